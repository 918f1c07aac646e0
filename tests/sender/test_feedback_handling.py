"""What the sender does with receivers' reports: key-frame requests are answered at once
but at most every 0.5 s, and only receivers heard from lately count."""

from sender.app import KeyFrameGate, ReceiverReports
from shared.wire import ReportMessage


def test_a_request_after_a_quiet_while_is_answered_at_once():
    gate = KeyFrameGate(min_gap_s=0.5)
    assert not gate.due(0.0)
    gate.key_frame_sent(0.0)  # the stream's first frame
    gate.request()
    assert gate.due(3.5)  # a late joiner


def test_a_flood_of_requests_gives_one_key_frame_per_gap():
    gate = KeyFrameGate(min_gap_s=0.5)
    keys = []
    for frame in range(300):  # 10 s at 30 fps, a request before every frame
        now = frame / 30
        gate.request()
        if gate.due(now):
            keys.append(frame)
            gate.key_frame_sent(now)
    assert len(keys) == 20 and keys[:3] == [0, 15, 30]


def test_any_key_frame_answers_the_requests_before_it():
    gate = KeyFrameGate(min_gap_s=0.5)
    gate.key_frame_sent(0.0)
    gate.request()
    assert not gate.due(0.2)  # waits for the gap
    gate.key_frame_sent(0.3)  # e.g. the periodic key frame came first
    assert not gate.due(1.0)


def report(kbps: float) -> ReportMessage:
    return ReportMessage("receiver", 30, kbps, 0, 20.0, 5.0, keyframe=False)


def test_receivers_silent_for_a_while_are_forgotten():
    heard = ReceiverReports(keep_s=10.0)
    heard.add(b"a", report(100), 0.0)
    heard.add(b"b", report(200), 5.0)
    heard.add(b"a", report(150), 8.0)  # a's newer report replaces its old one
    assert [r.kbps for r in heard.latest(9.0)] == [200, 150]
    assert [r.kbps for r in heard.latest(16.0)] == [150]  # b silent for 11 s
    assert b"b" not in heard and len(heard) == 1
    assert heard.latest(30.0) == []


def test_a_flood_of_peers_keeps_only_the_most_recent():
    heard = ReceiverReports(limit=256)
    for i in range(10_000):
        heard.add(i.to_bytes(4, "big"), report(i), i / 1000)
    current = heard.latest(10.0)
    assert len(current) == 256 and current[-1].kbps == 9_999
