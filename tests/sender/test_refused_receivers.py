"""The sender refuses what receivers would refuse: receivers whose handshake fails (said
and counted) and frames larger than receivers decode."""

import time

import numpy as np
import pytest
import zmq

from sender.publisher import FramePublisher
from shared.codec import ImageCodec
from shared.security import ClientSecurity, ServerSecurity
from tests.test_end_to_end import free_port


def test_refused_receivers_are_told_once_per_kind_and_counted(tiny_model_path, keys):
    codec = ImageCodec.load(str(tiny_model_path))
    address = f"tcp://127.0.0.1:{free_port()}"
    security = ServerSecurity(keys / "sender.key_secret", keys / "allowed")
    publisher = FramePublisher(codec, address, "s", security=security)
    context = zmq.Context.instance()
    clients = []
    try:
        for key, server_key in (("stranger", "sender"), ("stranger", "sender"), (None, None)):
            socket = context.socket(zmq.SUB)
            if key:
                ClientSecurity(keys / f"{key}.key_secret", keys / f"{server_key}.key").apply(socket)
            socket.connect(address)
            clients.append(socket)
        lines, deadline = [], time.monotonic() + 2.0
        while time.monotonic() < deadline:
            lines += publisher.refused_handshakes()
            time.sleep(0.05)
        assert publisher.refused["key_not_allowed"] == 2
        assert publisher.refused["security_mismatch"] >= 1
        assert len(lines) == 2, lines  # one line per kind, however many receivers
        assert any("not in --allow" in line for line in lines)
        assert any("--secure on one end only" in line for line in lines)
    finally:
        for socket in clients:
            socket.close(linger=0)
        publisher.close()
        security.close()


def test_frames_larger_than_receivers_decode_are_refused_at_the_sender(tiny_model_path):
    codec = ImageCodec.load(str(tiny_model_path))
    publisher = FramePublisher(codec, f"tcp://127.0.0.1:{free_port()}", "s", False)
    try:
        with pytest.raises(ValueError, match="give --size"):
            publisher.send(np.zeros((1440, 2560, 3), np.uint8), 0)
        assert publisher.send(np.zeros((1080, 1920, 3), np.uint8), 0).width == 1920
    finally:
        publisher.close()
