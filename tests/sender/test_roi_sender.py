"""``--roi face``: the option reaches the config, and a publisher with a region of interest
sends frames that an ordinary receiver decodes exactly."""

import time

import numpy as np
import zmq

from sender.__main__ import build_parser
from sender.app import SenderConfig
from sender.publisher import FramePublisher
from shared import roi, wire
from shared.codec import ImageCodec
from shared.roi import FaceRoi, RoiSettings
from shared.video import VideoDecoder
from tests.conftest import natural_like_image
from tests.test_end_to_end import free_port


def test_roi_options_reach_the_config():
    config = SenderConfig(**vars(build_parser().parse_args(["--roi", "face", "--roi-boost", "1"])))
    assert (config.roi, config.roi_boost, config.roi_interval) == ("face", 1, RoiSettings.interval)
    assert SenderConfig(**vars(build_parser().parse_args([]))).roi is None


def test_publisher_with_a_face_region_streams_decodable_frames(monkeypatch):
    monkeypatch.setattr(roi, "face_boxes", lambda rgb, min_face: np.array([[112, 64, 32, 32]]))
    codec = ImageCodec.load("realtime", "cpu")
    port = free_port()
    context = zmq.Context.instance()
    publisher = FramePublisher(
        codec, f"tcp://127.0.0.1:{port}", "cam0", False, roi=FaceRoi(codec.stride)
    )
    plain = FramePublisher(codec, f"tcp://127.0.0.1:{free_port()}", "cam0", False)
    subscriber = context.socket(zmq.SUB)
    subscriber.setsockopt(zmq.SUBSCRIBE, wire.TOPIC_FRAME)
    subscriber.connect(f"tcp://127.0.0.1:{port}")
    time.sleep(0.5)
    decoder = VideoDecoder(codec)
    try:
        for seq in range(4):
            frame = natural_like_image(192, 256, seed=seq)
            sent = publisher.send(frame, 2, "rgb")
            assert sent.payload_bytes < plain.send(frame, 2, "rgb").payload_bytes
            assert subscriber.poll(5000)
            message = wire.decode(subscriber.recv_multipart())
            decoded = decoder.decode(message, message.seq)
            np.testing.assert_array_equal(decoded.latents, publisher.encoder.last_latents)
    finally:
        subscriber.close(linger=0)
        publisher.close()
        plain.close()
