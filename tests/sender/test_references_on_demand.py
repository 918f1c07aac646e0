"""The lossless originals (for the receivers' PSNR) are encoded and sent only while some
subscriber wants them: they cost the sender 5-17 ms a 640x480 frame."""

import time

import zmq

from sender.publisher import FramePublisher
from shared import wire
from shared.codec import ImageCodec
from tests.conftest import natural_like_image
from tests.test_end_to_end import free_port


def send_until(publisher, frame, wanted: bool, seconds: float = 3.0) -> int:
    """Send frames until one's reference bytes are (non-)zero as ``wanted``; returns them."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sent = publisher.send(frame, 0)
        if (sent.reference_bytes > 0) == wanted:
            return sent.reference_bytes
        time.sleep(0.02)
    raise AssertionError(f"reference bytes never became {'> 0' if wanted else '0'}")


def test_originals_follow_the_subscriptions(tiny_model_path):
    codec = ImageCodec.load(str(tiny_model_path))
    address = f"tcp://127.0.0.1:{free_port()}"
    publisher = FramePublisher(codec, address, "s")
    frame = natural_like_image(48, 64)
    context = zmq.Context.instance()
    frames_only = context.socket(zmq.SUB)
    frames_only.setsockopt(zmq.SUBSCRIBE, wire.TOPIC_FRAME)  # like --no-psnr
    frames_only.connect(address)
    with_psnr = context.socket(zmq.SUB)
    try:
        assert publisher.send(frame, 0).reference_bytes == 0  # nobody listens yet
        time.sleep(0.3)  # frames_only's subscription has arrived by now
        assert publisher.send(frame, 0).reference_bytes == 0
        with_psnr.setsockopt(zmq.SUBSCRIBE, wire.TOPIC_REFERENCE)
        with_psnr.connect(address)
        assert send_until(publisher, frame, wanted=True) > 0
        with_psnr.setsockopt(zmq.UNSUBSCRIBE, wire.TOPIC_REFERENCE)
        assert send_until(publisher, frame, wanted=False) == 0
        everything = context.socket(zmq.SUB)
        everything.setsockopt(zmq.SUBSCRIBE, b"")
        everything.connect(address)
        assert send_until(publisher, frame, wanted=True) > 0
        everything.close(linger=0)
    finally:
        frames_only.close(linger=0)
        with_psnr.close(linger=0)
        publisher.close()
