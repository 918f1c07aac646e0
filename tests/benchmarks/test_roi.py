"""The ROI benchmark codes a clip uniformly and with the face map, and compares them at
equal bits; clips without a face are left out."""

import json

import cv2
import numpy as np
import pytest

from benchmarks.__main__ import main
from benchmarks.roi import compare, read_at, run_roi
from shared import roi
from shared.roi import FaceRoi, RoiSettings
from tests.conftest import natural_like_image


@pytest.fixture
def clip_folder(tmp_path):
    """A 6-frame 256x192 clip (a slow pan) and a one-frame clip."""
    folder = tmp_path / "videos"
    folder.mkdir()
    scene = natural_like_image(192, 272, seed=5)
    for name, count in (("talk.avi", 6), ("empty.avi", 1)):
        writer = cv2.VideoWriter(
            str(folder / name), cv2.VideoWriter_fourcc(*"FFV1"), 25, (256, 192)
        )
        for i in range(count):
            frame = np.ascontiguousarray(scene[:, i : i + 256])
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
    return folder


def test_tiny_run_compares_at_equal_bits(clip_folder, tmp_path, monkeypatch):
    def fake_faces(rgb, min_face):  # "empty.avi" is a single frame: no face there
        return np.array([[112, 64, 32, 32]]) if rgb.shape == (192, 256, 3) else np.zeros((0, 4))

    monkeypatch.setattr(roi, "face_boxes", fake_faces)
    out = tmp_path / "out"
    result = run_roi(str(clip_folder), str(out), "realtime", 6, [0, 2, 4, 6], ("talk.avi",))
    entry = result["clips"]["talk.avi"]
    assert entry["frames"] == 6 and entry["face_frames"] == 6 and 0 < entry["roi_area_share"] < 1
    for uniform, coded in zip(entry["uniform"], entry["roi"], strict=True):
        assert coded["kbps"] < uniform["kbps"]
        assert coded["psnr_outside"] < uniform["psnr_outside"]
        assert abs(coded["psnr_inside"] - uniform["psnr_inside"]) < 0.5  # same level
    equal = entry["equal_bits"]
    # (This synthetic scene saturates inside, so only the outside's loss is certain here;
    # tests/shared/test_roi.py checks the inside's gain at equal bits.)
    assert equal["delta_outside_db"] < 0 and equal["delta_inside_db"] is not None
    assert len(equal["at_uniform_rates"]) == 4
    saved = json.loads((out / "roi.json").read_text())
    assert saved["clips"]["talk.avi"]["roi"] == entry["roi"]
    assert (out / "roi.png").stat().st_size > 10_000


def test_clips_without_a_face_are_left_out(clip_folder, tmp_path, monkeypatch):
    monkeypatch.setattr(roi, "face_boxes", lambda rgb, min_face: np.zeros((0, 4)))
    result = run_roi(str(clip_folder), str(tmp_path / "out"), "realtime", 2, [1], ("*.avi",))
    assert result["clips"] == {}
    assert result["skipped_clips"] == {
        "empty.avi": "no face detected",
        "talk.avi": "no face detected",
    }


def test_equal_bits_reading():
    uniform = [
        {"level": 0, "kbps": 100.0, "psnr_inside": 30.0, "psnr_outside": 30.0, "psnr": 30.0},
        {"level": 1, "kbps": 200.0, "psnr_inside": 32.0, "psnr_outside": 32.0, "psnr": 32.0},
    ]
    shifted = [dict(p, psnr_inside=p["psnr_inside"] + 1, psnr=p["psnr"] - 1) for p in uniform]
    assert read_at(uniform, "psnr_inside", 141.42) == pytest.approx(31.0, abs=1e-3)
    assert read_at(uniform, "psnr_inside", 50.0) is None
    result = compare(uniform, shifted)
    assert result["delta_inside_db"] == pytest.approx(1.0)
    assert result["delta_outside_db"] == pytest.approx(0.0)
    assert result["delta_overall_db"] == pytest.approx(-1.0)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["roi", "--videos", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
    assert "no folder" in capsys.readouterr().err


def test_face_search_counts_faces_found_again_near_the_last_ones(
    clip_folder, tmp_path, monkeypatch
):
    from benchmarks.face_search import run_face_search

    # talk.avi's 6 frames at step 3: frames 0 and 3 (after one untimed warm-up scan).
    scans = iter(
        [
            np.zeros((0, 4)),
            np.array([[100, 60, 40, 40]]),
            np.array([[104, 62, 40, 40], [10, 10, 30, 30]]),
        ]
    )
    monkeypatch.setattr(roi, "face_boxes", lambda rgb, min_face=0: next(scans, np.zeros((0, 4))))
    near = iter([np.array([[105, 61, 41, 41]])])
    searched = []

    def fake_near(rgb, known, settings):
        searched.append(known.tolist())
        return next(near)

    monkeypatch.setattr(roi, "face_boxes_near", fake_near)
    out = tmp_path / "out"
    result = run_face_search(str(clip_folder), str(out), frames=6, step=3, patterns=("talk.avi",))
    assert searched == [[[100, 60, 40, 40]]]  # near the first scan's face, in frame 3
    # The second scan's face near the known one is expected and found (within 8 px); the
    # other, far away, is not expected of a near search.
    assert result["clips"]["talk.avi"] == {
        "searches": 1,
        "expected": 1,
        "found_again": 1,
        "near_boxes": 1,
    }
    assert result["near_search"]["median_ms"] > 0 and result["whole_frame_scan"]["median_ms"] > 0
    assert json.loads((out / "face_search.json").read_text())["total"] == result["total"]


def test_a_moving_face_is_tracked_in_real_time_by_both_trackers(monkeypatch):
    from benchmarks.face_search import WholeFrameOnly, track_moving_face

    frame = np.full((96, 128, 3), 40, dtype=np.uint8)
    frame[30:50, 50:70] = 255  # the "face": found wherever it is

    def find_square(rgb, *args):
        ys, xs = np.nonzero(rgb[:, :, 0] > 200)
        return np.array([[xs.min(), ys.min(), 20, 20]]) if len(xs) else np.zeros((0, 4))

    monkeypatch.setattr(roi, "face_boxes", find_square)
    monkeypatch.setattr(roi, "face_boxes_near", find_square)
    face = np.array([50, 30, 20, 20])
    for kind in (FaceRoi, WholeFrameOnly):
        run = track_moving_face(frame, face, 1000.0, 0.5, kind(16, RoiSettings(), True))
        assert run["frames"] == 15 and run["face_in_region_share"] == 1.0
        assert run["peak_speed_px_per_s"] == pytest.approx(2 * np.pi * 32 / 1000)
    # the whole-frame-only tracker never searches near the face
    assert run["searches"]["near"] == 0 and run["searches"]["full"] >= 1
