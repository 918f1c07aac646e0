"""A set-up that fails part-way closes what it had opened (the source, the sockets), so a
library caller is not left with bound ports or an open camera."""

import pytest
import zmq

import sender.app as app
from tests.test_end_to_end import free_port


def test_a_taken_feedback_port_closes_the_source_and_the_publisher(monkeypatch, tiny_model_path):
    closed = []
    close_publisher = app.FramePublisher.close
    monkeypatch.setattr(
        app.FramePublisher,
        "close",
        lambda self: (closed.append("publisher"), close_publisher(self)),
    )
    open_source = app.open_source

    def recording_open_source(*args, **kwargs):
        source = open_source(*args, **kwargs)
        close = source.close
        source.close = lambda: (closed.append("source"), close())
        return source

    monkeypatch.setattr(app, "open_source", recording_open_source)
    feedback_port = free_port()
    squatter = zmq.Context.instance().socket(zmq.ROUTER)
    squatter.bind(f"tcp://127.0.0.1:{feedback_port}")
    config = app.SenderConfig(
        bind=f"tcp://127.0.0.1:{free_port()}",
        feedback=f"tcp://127.0.0.1:{feedback_port}",
        model=str(tiny_model_path),
        threads=1,
        warmup=0.0,
        quiet=True,
    )
    try:
        with pytest.raises(ValueError, match="cannot bind feedback"):
            app.SendLoop(config)
    finally:
        squatter.close(linger=0)
    assert sorted(closed) == ["publisher", "source"]
