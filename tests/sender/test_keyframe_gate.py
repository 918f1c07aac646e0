"""Key-frame requests from receivers are answered at once, but at most every 0.5 s."""

from sender.app import KeyFrameGate


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
