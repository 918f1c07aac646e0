"""A receiver whose set-up fails part-way (here: the window or recording cannot open)
closes the sockets it had already connected."""

import pytest

import receiver.app as app
from tests.test_end_to_end import free_port


def test_a_sink_that_cannot_open_closes_the_sockets(monkeypatch, tmp_path, tiny_model_path):
    closed = []
    for cls, name in ((app.FrameSubscriber, "subscriber"), (app.FeedbackClient, "feedback")):
        original = cls.close
        monkeypatch.setattr(
            cls, "close", lambda self, o=original, n=name: (closed.append(n), o(self))
        )

    def no_display(*args):
        raise ValueError("no display")

    monkeypatch.setattr(app, "FrameSink", no_display)
    config = app.ReceiverConfig(
        connect=f"tcp://127.0.0.1:{free_port()}",
        model=str(tiny_model_path),
        threads=1,
        record=str(tmp_path / "out.mp4"),
        quiet=True,
    )
    with pytest.raises(ValueError, match="no display"):
        app.ReceiveLoop(config)
    assert sorted(closed) == ["feedback", "subscriber"]
