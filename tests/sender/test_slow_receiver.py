"""A receiver that falls behind because it decodes too slowly is named as such by the sender,
not mistaken for a narrow link."""

from sender.app import slow_receiver, slow_receiver_hint
from shared import wire


def report(decode_ms: float, name: str = "rx") -> wire.ReportMessage:
    return wire.ReportMessage(name, 12, 80.0, 0, 105.0, decode_ms, keyframe=False)


def test_a_receiver_decoding_near_the_frame_interval_is_slow():
    # 30 fps: 33 ms between frames; 80% of it is 26.7 ms.
    assert slow_receiver([report(11.4)], 30.0) is None
    assert slow_receiver([report(25.0)], 30.0) is None
    assert slow_receiver([report(27.0)], 30.0) is not None
    # The same decode time is fast enough at 15 fps.
    assert slow_receiver([report(27.0)], 15.0) is None


def test_the_slowest_of_several_receivers_is_named():
    reports = [report(11.0, "a"), report(56.0, "b"), report(40.0, "c")]
    assert slow_receiver(reports, 30.0).stream == "b"
    assert slow_receiver([], 30.0) is None


def test_the_hint_names_the_cause_and_what_helps():
    hint = slow_receiver_hint("denoise", 56.0, 30.0)
    assert "56 ms a frame" in hint and "33 ms between frames" in hint
    assert "not the link" in hint and "--model denoise-realtime" in hint
    assert "--no-psnr" not in hint
    assert "--model realtime-lite" in slow_receiver_hint("realtime", 40.0, 30.0)
    assert "--size" in slow_receiver_hint("realtime-lite", 40.0, 30.0)
    assert "--model" not in slow_receiver_hint("denoise-realtime", 40.0, 30.0)
