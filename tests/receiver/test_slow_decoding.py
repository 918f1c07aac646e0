"""A receiver too slow to show every frame says so, and names what helps."""

from receiver.app import slow_decoding_hint


def test_the_hint_names_the_model_that_helps():
    denoise = slow_decoding_hint("denoise", 88.0, 10.0)
    assert "88 ms a frame" in denoise and "shows 10 frames a second" in denoise
    assert "--model denoise-realtime" in denoise
    assert "--model realtime" in slow_decoding_hint("hyperprior", 50.0, 20.0)
    assert "--model realtime-lite" in slow_decoding_hint("realtime", 40.0, 25.0)
    assert "--threads" in slow_decoding_hint("realtime-lite", 40.0, 25.0)
    assert "--model" not in slow_decoding_hint("denoise-realtime", 40.0, 25.0)
