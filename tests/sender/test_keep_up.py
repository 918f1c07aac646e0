"""A sender whose own work cannot keep up with its source says so once, and what helps."""

from sender.app import KeepUpWatch, keep_up_hint


def test_three_slow_busy_seconds_are_told_once():
    watch = KeepUpWatch(30.0)
    assert [watch.second(13.0, 0.95) for _ in range(5)] == [False, False, True, False, False]


def test_a_source_that_delivers_fewer_frames_is_not_the_senders_fault():
    """A camera giving 15 of its announced 30 fps in low light: the sender mostly waits."""
    watch = KeepUpWatch(30.0)
    assert not any(watch.second(15.0, 0.3) for _ in range(10))


def test_a_second_that_keeps_up_starts_the_count_again():
    watch = KeepUpWatch(30.0)
    seconds = [(20.0, 0.9), (20.0, 0.9), (29.5, 0.9), (20.0, 0.9), (20.0, 0.9)]
    assert not any(watch.second(*second) for second in seconds)
    assert watch.second(20.0, 0.9)


def test_without_a_known_frame_rate_nothing_is_told():
    watch = KeepUpWatch(None)
    assert not any(watch.second(1.0, 1.0) for _ in range(10))


def test_the_hint_names_what_helps():
    denoise = keep_up_hint("denoise", 13.0, 30.0, 26.0)
    assert "13 of the source's 30 frames" in denoise and "--model denoise-realtime" in denoise
    assert "--model realtime" in keep_up_hint("fast", 8.0, 30.0, 90.0)
    assert "--model realtime-lite does half" in keep_up_hint("realtime", 20.0, 30.0, 40.0)
    assert "--size" in keep_up_hint("realtime-lite", 20.0, 30.0, 40.0)


def test_the_real_time_denoiser_is_not_told_to_give_up_denoising():
    hint = keep_up_hint("denoise-realtime", 20.0, 30.0, 40.0)
    assert "--model" not in hint and "--size" in hint
