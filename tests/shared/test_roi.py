"""Region-of-interest coding: the face detector, the latent map, and streams that the
unchanged decoder reads exactly while more of the bits land inside the region."""

import time

import numpy as np
import pytest

from shared import haar, roi
from shared.codec import ImageCodec
from shared.inter import QualityMap, quantize_key
from shared.metrics import mse
from shared.roi import FaceRoi, RoiSettings, outside_weight, pixel_mask, quality_map, region_boxes
from shared.video import VideoDecoder, VideoEncoder, VideoSettings
from tests.conftest import ROOT, natural_like_image
from tests.shared.test_video import moving_frames

AKIYO = ROOT.parent / "shared" / "datasets" / "video" / "akiyo_cif.mp4"
BOX = np.array([[48, 32, 32, 32]])  # a "face" in a 96x128 frame


@pytest.fixture(scope="module")
def codec() -> ImageCodec:
    return ImageCodec.load("realtime", "cpu")


def test_region_grows_by_the_margins_and_stays_in_the_frame():
    settings = RoiSettings(margin_side=0.25, margin_top=0.5, margin_bottom=1.0)
    assert region_boxes(BOX, 96, 128, settings).tolist() == [[40, 16, 88, 96]]
    assert region_boxes([[0, 0, 40, 40]], 96, 128, settings).tolist() == [[0, 0, 50, 80]]
    mask = pixel_mask(BOX, 96, 128, settings)
    assert mask.shape == (96, 128) and mask.sum() == 48 * 80 and mask[16:96, 40:88].all()


def test_latent_map_is_zero_inside_one_outside_with_a_ramp():
    mask = np.zeros((100, 130), dtype=bool)
    mask[40:60, 50:70] = True  # touches latent cells rows 2-3, columns 3-4 at stride 16
    weight = outside_weight(mask, 16, feather=1)
    assert weight.shape == (7, 9)  # ceil(100/16), ceil(130/16)
    inside = weight == 0
    assert inside.sum() == 4 and inside[2:4, 3:5].all()
    assert weight[2, 5] == pytest.approx(0.5) and weight[1, 3] == pytest.approx(0.5)
    assert weight[0, 0] == 1.0 and weight[6, 8] == 1.0
    assert ((weight >= 0) & (weight <= 1)).all()
    assert set(np.unique(outside_weight(mask, 16, feather=0))) == {0.0, 1.0}
    assert (outside_weight(np.zeros((32, 32), dtype=bool), 16) == 1).all()  # no face
    settings = RoiSettings(key_deadzone=4.0, deadzone=3.0, skip_l1=16)
    q = quality_map(weight, settings)
    assert q.shape == (7, 9)
    np.testing.assert_allclose(q.key_deadzone, 4.0 * weight)
    np.testing.assert_allclose(q.deadzone, 3.0 * weight)
    np.testing.assert_allclose(q.skip_l1, 16 * weight)


def test_key_deadzone_rounds_towards_zero_only_where_asked():
    scaled = np.array([[[0.4, 1.4, 2.6, -3.7]]])
    rounded = np.rint(scaled).astype(np.int32)
    assert quantize_key(scaled, rounded, np.zeros((1, 4))).tolist() == rounded.tolist()
    deadzone = np.array([[0.0, 1.0, 1.0, 4.0]])
    assert quantize_key(scaled, rounded, deadzone).tolist() == [[[0, 0, 3, 0]]]


def test_a_map_of_the_wrong_shape_is_refused(codec):
    bad = QualityMap(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError):
        VideoEncoder(codec).encode(natural_like_image(96, 128), 2, quality=bad)


def test_no_map_or_an_all_zero_map_is_the_plain_stream(codec):
    frames = moving_frames(6)
    zero = QualityMap(*(np.zeros((6, 8)) for _ in range(3)))
    plain, none, zeros = VideoEncoder(codec), VideoEncoder(codec), VideoEncoder(codec)
    for i, frame in enumerate(frames):
        level = [2, 2, 3, 1, 2, 2][i]
        a = plain.encode(frame, level)
        b = none.encode(frame, level, quality=None)
        c = zeros.encode(frame, level, quality=zero)
        assert a.payload == b.payload == c.payload and a.kind == c.kind


def test_roi_stream_decodes_exactly_with_the_unchanged_decoder(codec):
    tracker = FaceRoi(codec.stride)
    quality = tracker.map_of(BOX, 96, 128)
    encoder = VideoEncoder(codec, VideoSettings(keyframe_interval=4, slice_rows=4))
    decoder = VideoDecoder(codec)
    for seq, frame in enumerate(moving_frames(9)):
        coded = encoder.encode(frame, [2, 3, 3, 1][seq % 4], quality=quality)
        decoded = decoder.decode(coded, seq)
        np.testing.assert_array_equal(decoded.latents, encoder.last_latents)
        assert decoder.synchronized and decoded.rgb.shape == frame.shape


def test_more_of_the_bits_land_inside_the_region(codec):
    frame = natural_like_image(192, 256, seed=7)
    settings = RoiSettings()
    box = np.array([[112, 64, 32, 32]])
    quality = FaceRoi(codec.stride, settings).map_of(box, 192, 256)
    inside_cells = quality.key_deadzone == 0
    mask = pixel_mask(box, 192, 256, settings)

    def key_frame(level, q):
        encoder = VideoEncoder(codec)
        coded = encoder.encode(frame, level, quality=q)
        decoded = VideoDecoder(codec).decode(coded, 0)
        return len(coded.payload), decoded

    uniform_bytes, uniform = key_frame(2, None)
    roi_bytes, same_level = key_frame(2, quality)
    assert roi_bytes < 0.8 * uniform_bytes
    # Inside, the latents are the plain ones; outside, most become zero.
    np.testing.assert_array_equal(
        same_level.latents[:, inside_cells], uniform.latents[:, inside_cells]
    )
    outside = ~inside_cells
    assert (same_level.latents[:, outside] == 0).mean() > (uniform.latents[:, outside] == 0).mean()
    # At equal (or fewer) bits ROI coding affords a higher level: better inside, worse outside.
    level = max(k for k in range(codec.levels) if key_frame(k, quality)[0] <= uniform_bytes)
    assert level > 2
    _, boosted = key_frame(level, quality)
    assert mse(frame[mask], boosted.rgb[mask]) < mse(frame[mask], uniform.rgb[mask])
    assert mse(frame[~mask], boosted.rgb[~mask]) > mse(frame[~mask], uniform.rgb[~mask])


def test_tracker_detects_on_its_cadence_and_holds_the_last_boxes(monkeypatch):
    answers = iter([BOX] + [np.zeros((0, 4))] * 4)
    calls = []

    def fake(rgb, min_face):
        calls.append(len(calls))
        return next(answers)

    monkeypatch.setattr(roi, "face_boxes", fake)
    tracker = FaceRoi(16, RoiSettings(interval=3, hold=1))
    frame = natural_like_image(96, 128)
    found = [len(tracker.update(frame)) for _ in range(12)]
    assert len(calls) == 4  # frames 0, 3, 6, 9
    # a face at 0; kept through one empty detection (3); dropped at the second (6).
    assert found == [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    assert tracker.map_for(frame) is None  # no face: plain coding


def test_background_tracker_detects_first_in_place_then_in_the_background(monkeypatch):
    answers = iter([BOX, np.zeros((0, 4))] + [BOX] * 10)
    monkeypatch.setattr(roi, "face_boxes", lambda rgb, min_face: next(answers))
    tracker = FaceRoi(16, RoiSettings(interval=2, hold=0), background=True)
    frame = natural_like_image(96, 128)
    try:
        assert tracker.map_for(frame) is not None  # frame 0: detected in place
        assert tracker._pending is None
        tracker.update(frame)
        tracker.update(frame)  # frame 2: the empty answer, computed on the worker
        assert tracker._pending is not None
        tracker._pending.result(timeout=10)
        assert tracker.map_for(frame) is None  # delivered at the next frame (hold 0)
    finally:
        tracker.close()


def test_group_rectangles_merges_neighbours_like_opencv():
    rects = np.array([[10, 10, 40, 40], [11, 10, 40, 40], [10, 12, 41, 41], [12, 11, 40, 40]])
    lonely = np.array([[100, 100, 30, 30]])
    grouped = haar.group_rectangles(np.concatenate([rects, lonely]), min_neighbors=3)
    assert grouped.tolist() == [[11, 11, 40, 40]]
    assert haar.group_rectangles(rects, min_neighbors=4).shape == (0, 4)


def test_shipped_cascade_parses():
    cascade = haar.frontal_face_cascade()
    assert (cascade.width, cascade.height, len(cascade.stages)) == (24, 24, 25)
    assert sum(stage.thresholds.size for stage in cascade.stages) == 2913
    assert len(cascade.detect(natural_like_image(96, 128)[:, :, 0])) == 0


@pytest.mark.skipif(not AKIYO.exists(), reason="needs the shared akiyo clip")
def test_face_found_in_akiyo_where_opencv_finds_it():
    import cv2

    capture = cv2.VideoCapture(str(AKIYO))
    ok, bgr = capture.read()
    capture.release()
    assert ok
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    boxes = roi.face_boxes(rgb)
    # OpenCV 4.12's CascadeClassifier finds (128, 78, 96, 96) with the same cascade.
    assert len(boxes) == 1 and np.abs(boxes[0] - [128, 78, 96, 96]).max() <= 3


def _run_background(tracker: FaceRoi, seconds: float) -> None:
    frame = natural_like_image(96, 128)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:  # a frame every 10 ms, a detection asked each
            tracker.update(frame)
            time.sleep(0.01)
    finally:
        tracker.close()


def test_a_slow_background_detector_keeps_to_its_share_of_the_time(monkeypatch):
    calls = []

    def slow_and_empty(rgb, min_face):
        calls.append(time.monotonic())
        time.sleep(0.1)
        return np.zeros((0, 4), dtype=np.int64)

    monkeypatch.setattr(roi, "face_boxes", slow_and_empty)
    tracker = FaceRoi(16, RoiSettings(interval=1, max_busy=0.25), background=True)
    _run_background(tracker, 1.5)
    # No face known: whole-frame scans get the whole budget, 0.1 s of work then 0.3 s of
    # rest: about 4 in 1.5 s (the first in place), not 14.
    assert 3 <= len(calls) <= 5
    gaps = np.diff(calls[1:])
    assert (gaps >= 0.39).all(), gaps
    assert tracker.searches == {"full": len(calls), "near": 0}


def test_with_a_face_known_searches_near_it_between_whole_frame_scans(monkeypatch):
    full, near = [], []

    def slow_full(rgb, min_face):
        full.append(time.monotonic())
        time.sleep(0.1)
        return BOX

    def quick_near(rgb, known, settings):
        assert known.tolist() == [BOX[0].tolist()] * 2  # where it was, where it will be
        near.append(time.monotonic())
        time.sleep(0.02)
        return BOX

    monkeypatch.setattr(roi, "face_boxes", slow_full)
    monkeypatch.setattr(roi, "face_boxes_near", quick_near)
    tracker = FaceRoi(16, RoiSettings(interval=1, max_busy=0.25), background=True)
    _run_background(tracker, 2.0)
    # A third of the budget to whole-frame scans: one (0.1 s) rests 1.1 s; two thirds to
    # near searches: one (0.02 s) rests 0.1 s. So 2 scans in 2 s (0 s in place, ~1.2 s)
    # and the near searches between them, about one every 0.12 s (at most 15).
    assert len(full) == 2 and (np.diff(full) >= 1.19).all(), np.diff(full)
    assert 8 <= len(near) <= 17, len(near)
    assert (np.diff(near) >= 0.119).all(), np.diff(near)
    assert tracker.searches == {"full": len(full), "near": len(near)}
    busy = 0.1 * len(full) + 0.02 * len(near)
    assert busy / 2.0 <= 0.25 + 0.05


def test_a_face_seen_twice_gets_a_velocity_and_the_region_moves_with_it(monkeypatch):
    answers = iter([np.array([[40, 30, 20, 20]]), np.array([[50, 34, 20, 20]])])
    monkeypatch.setattr(roi, "face_boxes", lambda rgb, min_face: next(answers))
    monkeypatch.setattr(roi, "face_boxes_near", lambda rgb, known, settings: next(answers))
    tracker = FaceRoi(16, RoiSettings(interval=5, hold=0), background=True)
    frame = natural_like_image(96, 128)
    try:
        tracker.update(frame)  # frame 0, in place: (40, 30)
        for _ in range(5):
            tracker.update(frame)  # frame 5 asks the worker for a search
        tracker._pending.result(timeout=10)
        # Delivered at frame 6: found at frame 5, 10 px right and 4 down in 5 frames.
        assert tracker.update(frame).tolist() == [[52, 35, 20, 20]]  # moved 1 frame on
        assert tracker.velocity.tolist() == [[2.0, 0.8]]
        for _ in range(3):
            tracker.update(frame)
        assert tracker.update(frame).tolist() == [[60, 38, 20, 20]]  # frame 10: 5 frames on
        tracker._pending = None  # (frame 10's search is not waited for)
        # moved for at most three intervals (15 frames) past its detection at frame 5
        with tracker._lock:
            assert tracker._boxes_at(20).tolist() == [[80, 46, 20, 20]]
            assert tracker._boxes_at(60).tolist() == [[80, 46, 20, 20]]
    finally:
        tracker.close()


def test_velocities_match_the_box_whose_motion_leads_nearest():
    before = np.array([[10, 10, 20, 20], [100, 50, 30, 30]])
    after = np.array([[134, 53, 30, 30], [14, 12, 20, 20], [300, 300, 20, 20]])
    old = np.array([[np.nan, np.nan], [15.0, 1.0]])
    velocity = roi._velocities(before, after, 2, old)
    # (134, 53): 34 px from (100, 50), but 4 px from where its velocity took it (130, 52),
    # so (17, 1.5) per frame; (14, 12) from (10, 10), which had none: (2, 1); (300, 300)
    # matches nothing: not known.
    assert velocity[:2].tolist() == [[17.0, 1.5], [2.0, 1.0]] and np.isnan(velocity[2]).all()
    assert np.isnan(roi._velocities(before, after, 2, np.zeros((0, 2)))[0]).all()
    assert np.isnan(roi._velocities(np.zeros((0, 4)), after, 2, np.zeros((0, 2)))).all()


def test_after_a_near_search_finds_nothing_only_a_whole_frame_scan_runs(monkeypatch):
    tracker = FaceRoi(16, RoiSettings(max_busy=0.1, near_share=0.5))
    tracker.boxes = BOX
    tracker._last = {"full": (10.0, 1.0), "near": (10.0, 0.01)}
    # tracking: near searches wait 0.01 * 19 s, whole-frame scans 1 * 19 s
    assert tracker._due(10.1) is None and tracker._due(10.2) == "near"
    assert tracker._due(29.0) == "full"
    tracker._take(np.zeros((0, 4)), 30, "near")
    # lost: whole-frame scans only, with the whole budget (1 * 9 s)
    assert tracker._due(10.2) is None and tracker._due(19.0) == "full"
    tracker._take(BOX, 31, "full")
    assert tracker._due(10.2) == "near"


def test_near_search_looks_only_around_the_known_face_and_groups_like_a_full_scan(
    monkeypatch,
):
    asked = []

    def fake_detector(gray, scale_factor, min_neighbors, min_size, max_size=0):
        asked.append((gray.shape, min_neighbors, min_size, max_size))
        return np.array([[5, 5, 25, 25]] * 4)  # four raw windows: one face once grouped

    monkeypatch.setattr(roi, "_detect", lambda: fake_detector)
    frame = natural_like_image(96, 128)
    known = np.array([[40, 30, 20, 20], [48, 40, 20, 20], [100, 0, 10, 10], [300, 40, 20, 20]])
    found = roi.face_boxes_near(frame, known, RoiSettings(search_margin=0.5, search_span=1.33))
    # The first two areas overlap and are searched as one: x 30-78, y 20-70; faces from
    # the smallest looked for (24 px: an eighth of the height, at least 24) to 27 px. The
    # third (x 95-115, y 0-15) is smaller than the smallest face and is not searched, nor
    # is the fourth, off the frame.
    assert asked == [((50, 48), 0, 24, 27)]
    assert found.tolist() == [[35, 25, 25, 25]]
    assert roi.face_boxes_near(frame, np.zeros((0, 4))).shape == (0, 4)


@pytest.mark.skipif(not AKIYO.exists(), reason="needs the shared akiyo clip")
def test_near_search_finds_akiyo_where_a_full_scan_does_and_nothing_elsewhere():
    import cv2

    capture = cv2.VideoCapture(str(AKIYO))
    frames = [capture.read()[1] for _ in range(11)]
    capture.release()
    first, later = (cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) for bgr in (frames[0], frames[10]))
    known = roi.face_boxes(first)
    full, near = roi.face_boxes(later), roi.face_boxes_near(later, known)
    assert len(full) == len(near) == 1 and np.abs(near - full).max() <= 3, (full, near)
    assert len(roi.face_boxes_near(later, np.array([[250, 180, 60, 60]]))) == 0
