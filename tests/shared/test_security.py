"""--secure: CURVE encryption and an allow-list of receiver keys (pyzmq's zmq.auth)."""

import socket
import subprocess
import sys
import threading
import time

import pytest
import zmq

from receiver.subscriber import FrameSubscriber
from sender.publisher import FramePublisher
from shared import wire
from shared.codec import ImageCodec
from shared.security import ClientSecurity, KeyFileError, ServerSecurity, main
from tests.conftest import ROOT, natural_like_image

STREAM_ID = "plaintext-marker-stream"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Relay(threading.Thread):
    """A TCP relay that records every byte going from the sender to the receiver."""

    def __init__(self, target_port: int) -> None:
        super().__init__(daemon=True)
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.captured = bytearray()

    def run(self) -> None:
        client, _ = self.listener.accept()
        upstream = socket.create_connection(("127.0.0.1", self.target_port))

        def pump(src, dst, record):
            while True:
                try:
                    data = src.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                if record:
                    self.captured.extend(data)
                dst.sendall(data)

        threading.Thread(target=pump, args=(client, upstream, False), daemon=True).start()
        pump(upstream, client, True)


def stream(codec, publisher, subscriber, frames: int = 8) -> list:
    image = natural_like_image(48, 64)
    received = []
    time.sleep(0.5)  # connection and CURVE handshake
    for _ in range(frames):
        publisher.send(image, 0, "rgb")
        time.sleep(0.05)
    deadline = time.time() + 2
    while time.time() < deadline:
        for parts, _ in subscriber.receive_all(100):
            received.append(wire.decode(parts))
    return received


def run_pair(codec, keys, client_name: str | None, secure: bool, relay: bool = False):
    context = zmq.Context()
    port = free_port()
    server = (
        ServerSecurity(str(keys / "sender.key_secret"), str(keys / "allowed")) if secure else None
    )
    publisher = FramePublisher(codec, f"tcp://127.0.0.1:{port}", STREAM_ID, True, context, server)
    tap = None
    if relay:
        tap = Relay(port)
        tap.start()
        port = tap.port
    client = None
    if secure:
        client = ClientSecurity(str(keys / f"{client_name}.key_secret"), str(keys / "sender.key"))
    subscriber = FrameSubscriber(f"tcp://127.0.0.1:{port}", True, context, client)
    try:
        return stream(codec, publisher, subscriber), tap
    finally:
        subscriber.close()
        publisher.close()
        context.term()


@pytest.fixture(scope="module")
def codec(tiny_model_path):
    return ImageCodec.load(str(tiny_model_path), "cpu", "fp32")


def test_listed_receiver_gets_the_stream_encrypted(codec, keys):
    received, tap = run_pair(codec, keys, "listed", secure=True, relay=True)
    frames = [m for m in received if isinstance(m, wire.FrameMessage)]
    assert len(frames) >= 6
    assert len(tap.captured) > sum(len(f.payload) for f in frames)
    assert STREAM_ID.encode() not in tap.captured
    assert frames[0].payload not in tap.captured


def test_without_secure_the_same_traffic_is_plaintext(codec, keys):
    received, tap = run_pair(codec, keys, None, secure=False, relay=True)
    frames = [m for m in received if isinstance(m, wire.FrameMessage)]
    assert frames and STREAM_ID.encode() in tap.captured
    assert frames[0].payload in tap.captured


def test_unlisted_receiver_receives_nothing(codec, keys):
    received, _ = run_pair(codec, keys, "stranger", secure=True)
    assert received == []


def test_missing_and_bad_keys_are_clear_errors(keys, tmp_path):
    with pytest.raises(KeyFileError, match="does not exist"):
        ServerSecurity(str(keys / "nope.key_secret"), str(keys / "allowed"))
    with pytest.raises(KeyFileError, match="no secret key"):
        ServerSecurity(str(keys / "sender.key"), str(keys / "allowed"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KeyFileError, match="holds no receiver public key"):
        ServerSecurity(str(keys / "sender.key_secret"), str(empty))
    garbage = tmp_path / "garbage.key_secret"
    garbage.write_text("not a certificate\n")
    with pytest.raises(KeyFileError):
        ClientSecurity(str(garbage), str(keys / "sender.key"))


def test_keygen_command_and_cli_errors(tmp_path, subprocess_env, tiny_model_path):
    result = subprocess.run(
        [sys.executable, "-m", "shared.security", "keygen", "--out", str(tmp_path), "--name", "rx"],
        capture_output=True,
        text=True,
        env=subprocess_env,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "rx.key").exists() and (tmp_path / "rx.key_secret").exists()
    assert oct((tmp_path / "rx.key_secret").stat().st_mode & 0o777) == "0o600"
    secret = (tmp_path / "rx.key_secret").read_bytes()
    assert main(["keygen", "--out", str(tmp_path), "--name", "rx"]) == 2  # never overwrites
    assert (tmp_path / "rx.key_secret").read_bytes() == secret
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "receiver",
            "--secure",
            "--key",
            str(tmp_path / "missing"),
            "--model",
            str(tiny_model_path),
            "--idle-timeout",
            "1",
        ],
        capture_output=True,
        text=True,
        env=subprocess_env,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not exist" in lines[0], result.stderr
