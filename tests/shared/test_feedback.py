"""The feedback channel: validated reports from receivers, authenticated with --secure."""

import time

import msgpack
import pytest
import zmq

from shared import wire
from shared.feedback import FeedbackClient, FeedbackServer, feedback_address
from shared.security import ClientSecurity, ServerSecurity
from tests.test_end_to_end import free_port

REPORT = wire.ReportMessage("rx", 30, 512.5, 2, 41.0, 7.5, keyframe=True)


def collect(server: FeedbackServer, seconds: float = 1.5) -> list:
    got, deadline = [], time.time() + seconds
    while time.time() < deadline:
        got += server.poll()
        time.sleep(0.02)
    return got


def test_reports_round_trip_and_bad_ones_are_counted():
    assert wire.decode_report(wire.encode_report(REPORT)) == REPORT
    context = zmq.Context()
    address = f"tcp://127.0.0.1:{free_port()}"
    server = FeedbackServer(address, context)
    client = FeedbackClient(address, context)
    raw = context.socket(zmq.DEALER)
    raw.connect(address)
    try:
        time.sleep(0.3)
        assert client.send(REPORT)
        raw.send(b"\xff\x00garbage")
        bad = dict(msgpack.unpackb(wire.encode_report(REPORT)), latency_ms=float("nan"))
        raw.send(msgpack.packb(bad))
        raw.send(msgpack.packb(dict(bad, latency_ms=5.0, keyframe=1)))
        got = collect(server)
        assert [report for _, report in got] == [REPORT]
        assert server.rejected == {"bad_msgpack": 1, "bad_field": 2}
    finally:
        raw.close(linger=0)
        client.close()
        server.close()
        context.term()


def test_a_flood_of_invalid_reports_is_read_a_bounded_batch_at_a_time():
    context = zmq.Context()
    address = f"tcp://127.0.0.1:{free_port()}"
    server = FeedbackServer(address, context)
    raw = context.socket(zmq.DEALER)
    raw.setsockopt(zmq.SNDHWM, 0)
    raw.connect(address)
    try:
        for _ in range(1000):
            raw.send(b"\xff\x00garbage")
        deadline = time.time() + 5
        while sum(server.rejected.values()) == 0 and time.time() < deadline:
            server.poll(limit=10)
            time.sleep(0.05)
        time.sleep(0.3)  # let the rest arrive
        assert server.poll(limit=10) == []
        read = sum(server.rejected.values())
        assert 10 < read <= 20  # two polls of 10, not all 1000 at once
    finally:
        raw.close(linger=0)
        server.close()
        context.term()


def test_secure_feedback_hears_only_listed_receivers(keys):
    context = zmq.Context()
    address = f"tcp://127.0.0.1:{free_port()}"
    security = ServerSecurity(str(keys / "sender.key_secret"), str(keys / "allowed"))
    server = FeedbackServer(address, context, security)
    clients = {
        name: FeedbackClient(
            address,
            context,
            ClientSecurity(str(keys / f"{name}.key_secret"), str(keys / "sender.key")),
        )
        for name in ("listed", "stranger")
    }
    try:
        time.sleep(0.5)
        for name, client in clients.items():
            client.send(wire.ReportMessage(name, 1, 1.0, 0, 1.0, 1.0, keyframe=False))
        streams = [report.stream for _, report in collect(server)]
        assert streams == ["listed"]
    finally:
        for client in clients.values():
            client.close()
        server.close()
        security.close()
        context.term()


def test_feedback_address():
    assert feedback_address("tcp://*:5555") == "tcp://*:5556"
    assert feedback_address("tcp://10.0.0.2:6000") == "tcp://10.0.0.2:6001"
    with pytest.raises(ValueError):
        feedback_address("ipc:///tmp/x")
