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


def test_a_roi_sender_reports_its_faces_and_searches(
    monkeypatch, image_folder, tiny_model_path, capsys
):
    from sender.app import run_sender

    def slow_whole_frame_scan(rgb, min_face):
        time.sleep(0.05)  # then the next waits 29 x 0.05 s: near searches run in between
        return np.array([[40, 30, 40, 40]])

    monkeypatch.setattr(roi, "face_boxes", slow_whole_frame_scan)
    monkeypatch.setattr(roi, "face_boxes_near", lambda rgb, known, s: np.array([[42, 30, 40, 40]]))
    config = SenderConfig(
        source=str(image_folder),
        bind=f"tcp://127.0.0.1:{free_port()}",
        model=str(tiny_model_path),
        roi="face",
        roi_interval=2,
        fps=10,
        loop=True,
        duration=1.5,
        warmup=0.0,
        feedback="off",
        threads=1,
    )
    summary = run_sender(config)
    assert "faces 1" in capsys.readouterr().out  # the status line, once a second
    searches = summary["face_searches"]
    assert searches["full"] >= 1 and searches["near"] >= 1, searches
    assert set(summary["face_search_ms"]) == {"full", "near"}
