"""The speed benchmark times every stage of a real round trip and its peers' real codecs."""

import cv2
import numpy as np
import pytest
import torch

from benchmarks.speed import RECEIVER_STAGES, SENDER_STAGES, time_jpeg, time_ours, time_x264
from shared.codec import ImageCodec
from tests.conftest import natural_like_image


@pytest.fixture
def frames():
    return [cv2.cvtColor(natural_like_image(96, 128, seed=i), cv2.COLOR_RGB2BGR) for i in range(4)]


def test_time_ours_reports_every_stage_and_consistent_totals(frames, tiny_model_path):
    codec = ImageCodec.load(str(tiny_model_path), "cpu", "fp32")
    result = time_ours(codec, frames, 1)
    for stage in SENDER_STAGES + RECEIVER_STAGES + ("sender_total", "receiver_total"):
        assert result[stage]["median_ms"] > 0
        assert result[stage]["p95_ms"] >= result[stage]["median_ms"]
    # A total is measured around its stages, so its median cannot be below any stage's.
    assert result["sender_total"]["median_ms"] >= result["analysis"]["median_ms"]
    assert result["receiver_total"]["median_ms"] >= result["synthesis"]["median_ms"]
    expected_bytes = np.mean([len(codec.compress(f, 1, "bgr").payload) for f in frames])
    assert result["bpp_mean"] == pytest.approx(8 * expected_bytes / (96 * 128))
    assert 0 < result["entropy_coding_share_pct"] < 100
    assert "prior_network" not in result  # a factorized prior has none


def test_time_ours_profiles_the_prior_network_of_a_hyperprior_model(frames):
    codec = ImageCodec.load("realtime", "cpu", "fp32")
    result = time_ours(codec, frames, 1)
    # The prior network runs inside entropy decoding; timed again alone it cannot take
    # longer than the slowest decode, and the coder's share is the rest.
    assert 0 < result["prior_network"]["median_ms"] <= result["entropy_decode"]["p95_ms"]
    assert 0 < result["coder_without_prior_network_share_pct"]
    assert result["coder_without_prior_network_share_pct"] < result["entropy_coding_share_pct"]


def test_peers_really_code(frames):
    x264 = time_x264(frames, threads=1)
    assert x264["bpp_mean"] > 0 and x264["total"]["median_ms"] > 0
    assert time_jpeg(frames)["total"]["median_ms"] > 0


def test_compressai_transforms_have_its_shapes():
    # make install installs CompressAI, so this runs (and fails if the import shim breaks).
    from benchmarks.compressai_ref import bmshj2018_factorized_transforms

    g_a, g_s = bmshj2018_factorized_transforms()
    with torch.inference_mode():
        y = g_a(torch.rand(1, 3, 64, 96))
        assert y.shape == (1, 192, 4, 6)
        assert g_s(y).shape == (1, 3, 64, 96)


def test_time_stream_splits_key_and_predicted_frames(frames, tiny_model_path):
    from benchmarks.speed import time_stream

    codec = ImageCodec.load(str(tiny_model_path), "cpu", "fp32")
    result = time_stream(codec, frames, 1)
    assert result["key"]["sender_total"]["median_ms"] > 0
    assert result["inter"]["receiver_total"]["median_ms"] > 0
    for kind in ("key", "inter"):
        entry = result[kind]
        for end in ("sender", "receiver"):
            assert entry[f"{end}_transforms"]["median_ms"] > 0
            parts = entry[f"{end}_transforms"]["median_ms"] + entry[f"{end}_coding"]["median_ms"]
            parts += entry["sender_convert"]["median_ms"] if end == "sender" else 0.0
            # medians of a sum need not add up exactly, but both parts lie within the total
            assert entry[f"{end}_coding"]["median_ms"] < entry[f"{end}_total"]["median_ms"]
            assert parts > 0.5 * entry[f"{end}_total"]["median_ms"]
        assert 0 < entry["coding_share_pct"] < 100
    assert not {"to_tensor", "transform", "synthesize"} & set(codec.__dict__)  # put back


def test_face_detection_is_timed_on_the_real_detector_and_counts_faces(frames, monkeypatch):
    from benchmarks.speed import time_face_detection

    # The real cascade on face-free frames: timed, and no face counted.
    result = time_face_detection(frames, count=2)
    assert result["frames"] == 2 and result["frames_with_face"] == 0
    assert result["p95_ms"] >= result["median_ms"] > 0
    # Counting follows what the detector returns (here: a face in every other call).
    import shared.roi

    calls = []

    def fake(rgb, *args):
        calls.append(rgb.shape)
        return np.zeros((len(calls) % 2, 4))

    monkeypatch.setattr(shared.roi, "face_boxes", fake)
    near = []

    def fake_near(rgb, known):
        near.append(len(known))
        return np.zeros((1, 4))

    monkeypatch.setattr(shared.roi, "face_boxes_near", fake_near)
    result = time_face_detection(frames)
    assert len(calls) == len(frames) + 1  # one untimed warm-up call
    assert result["frames"] == len(frames) and result["frames_with_face"] == 2
    assert calls[0] == frames[0].shape
    # Faces in frames 1 and 3 of 4: searched near frame 1's face in frame 2 only.
    assert near == [1]
    assert result["near"]["searches"] == len(near) == result["near"]["found"]
