"""Does a search near the last faces find what a whole-frame scan finds, and how fast?

A live sender with ``--roi face`` scans the whole frame for faces only now and then and in
between searches near the faces it knows (``shared.roi.face_boxes_near``). On each clip,
every ``step``-th of the first ``frames`` frames is scanned whole (``face_boxes``); each
such frame after one with a face is also searched near the previous scan's boxes, as the
sender would ``step`` frames later. A face of the whole-frame scan counts as *expected*
when its centre lies within half a box of a known box's centre (a face the near search is
meant to follow), and as *found again* when the near search returns a box within
``tolerance_px`` of it in every coordinate. Times are single-thread wall-clock ms.

With ``moving_clip``, the live tracker is also timed on a moving face: the first frame of
that clip, shifted sideways by ``amplitude`` times the width times ``sin(2 pi t / T)``
(gray where the frame moved away), is fed in real time at 30 fps for ``seconds`` to the
background tracker the sender uses (``FaceRoi(background=True)``) and to one that only
scans whole frames (the sender before the near search), for each period ``T``. Reported:
the share of frames whose true face centre (the face the first frame's scan finds,
shifted) lies inside the region in use, and the searches run. This runs at wall-clock
speed, so the machine's load changes it: nothing else should run.

Writes ``OUT/face_search.json``.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from shared import roi
from shared.roi import FaceRoi, RoiSettings

from .roi import DEFAULT_CLIPS
from .video import find_clips, read_clip


def _expected(faces: np.ndarray, known: np.ndarray) -> list[np.ndarray]:
    """The boxes of ``faces`` whose centre is within half a box of a ``known`` centre."""
    chosen = []
    for x, y, w, h in faces:
        for kx, ky, kw, kh in known:
            if abs(x + w / 2 - kx - kw / 2) < kw / 2 and abs(y + h / 2 - ky - kh / 2) < kh / 2:
                chosen.append(np.array([x, y, w, h]))
                break
    return chosen


def _ms(values_s: list[float]) -> dict:
    if not values_s:
        return {}
    return {
        "median_ms": 1000 * statistics.median(values_s),
        "p95_ms": 1000 * float(np.percentile(values_s, 95)),
    }


class WholeFrameOnly(FaceRoi):
    """The live tracker as it was before the near search: every detection scans the whole
    frame, under the whole budget, and the region does not move between detections."""

    def _due(self, now: float) -> str | None:
        ended, took = self._last["full"]
        return "full" if now >= ended + took * (1 / self.settings.max_busy - 1) else None

    def _boxes_at(self, frame: int) -> np.ndarray:
        return self.boxes


def track_moving_face(
    rgb: np.ndarray,
    face: np.ndarray,
    period_s: float,
    seconds: float,
    tracker: FaceRoi,
    amplitude: float = 0.25,
    fps: float = 30.0,
) -> dict:
    """Feed ``rgb`` shifted by ``amplitude * width * sin(2 pi t / period_s)`` to the
    background ``tracker`` in real time; the share of frames whose shifted ``face`` centre
    lies in the region in use (the tracker is closed at the end)."""
    height, width = rgb.shape[:2]
    x, y, w, h = (float(v) for v in face)
    inside, count = 0, int(seconds * fps)
    start = time.monotonic()
    try:
        for i in range(count):
            dx = amplitude * width * np.sin(2 * np.pi * i / fps / period_s)
            shift = np.float32([[1, 0, dx], [0, 1, 0]])
            frame = cv2.warpAffine(rgb, shift, (width, height), borderValue=(128, 128, 128))
            regions = roi.region_boxes(tracker.update(frame), height, width, tracker.settings)
            cx, cy = x + dx + w / 2, y + h / 2
            inside += any(r[0] <= cx < r[2] and r[1] <= cy < r[3] for r in regions)
            delay = start + (i + 1) / fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    finally:
        tracker.close()
    return {
        "period_s": period_s,
        "peak_speed_px_per_s": 2 * np.pi * amplitude * width / period_s,
        "frames": count,
        "face_in_region_share": inside / count,
        "searches": dict(tracker.searches),
    }


def run_face_search(
    videos: str,
    out: str,
    frames: int = 90,
    step: int = RoiSettings.interval,
    patterns: tuple[str, ...] = DEFAULT_CLIPS,
    settings: RoiSettings | None = None,
    tolerance_px: int = 8,
    moving_clip: str | None = None,
    periods_s: tuple[float, ...] = (20.0, 8.0, 4.0),
    seconds: float = 20.0,
) -> dict:
    """Run the benchmark; returns what it writes to ``OUT/face_search.json``."""
    settings = settings or RoiSettings()
    results: dict = {
        "frames_per_clip": frames,
        "step": step,
        "tolerance_px": tolerance_px,
        "roi_settings": asdict(settings),
        "clips": {},
    }
    clip_paths = find_clips(videos, patterns)
    if moving_clip and not (Path(videos) / moving_clip).is_file():
        raise FileNotFoundError(f"no clip {moving_clip} in {videos}")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    full_s, near_s = [], []
    for clip in clip_paths:
        rgb_frames = read_clip(clip, frames)[0][::step]
        roi.face_boxes(rgb_frames[0])  # the cascade's first load is not timed
        entry = {"searches": 0, "expected": 0, "found_again": 0, "near_boxes": 0}
        known = None
        for rgb in rgb_frames:
            t0 = time.perf_counter()
            faces = roi.face_boxes(rgb, settings.min_face)
            full_s.append(time.perf_counter() - t0)
            if known is not None and len(known):
                t0 = time.perf_counter()
                near = roi.face_boxes_near(rgb, known, settings)
                near_s.append(time.perf_counter() - t0)
                expected = _expected(faces, known)
                entry["searches"] += 1
                entry["near_boxes"] += len(near)
                entry["expected"] += len(expected)
                entry["found_again"] += sum(
                    any(np.abs(box - face).max() <= tolerance_px for box in near)
                    for face in expected
                )
            known = faces
        results["clips"][clip.name] = entry
        print(
            f"{clip.name}: {entry['found_again']} of {entry['expected']} faces found again "
            f"in {entry['searches']} near searches"
        )
    clips = results["clips"].values()
    results["total"] = {
        key: sum(c[key] for c in clips)
        for key in ("searches", "expected", "found_again", "near_boxes")
    }
    results["whole_frame_scan"] = _ms(full_s)
    results["near_search"] = _ms(near_s)
    total = results["total"]
    print(
        f"all clips: {total['found_again']} of {total['expected']} faces found again; "
        f"whole-frame scan {results['whole_frame_scan'].get('median_ms', 0):.1f} ms, "
        f"near search {results['near_search'].get('median_ms', 0):.1f} ms (medians)"
    )
    if moving_clip:
        results["moving"] = run_moving(Path(videos) / moving_clip, periods_s, seconds, settings)
    (out_dir / "face_search.json").write_text(json.dumps(results, indent=2))
    return results


def run_moving(
    clip: Path, periods_s: tuple[float, ...], seconds: float, settings: RoiSettings
) -> dict:
    """``track_moving_face`` for each period, with the sender's tracker and with
    ``WholeFrameOnly``, on the first frame of ``clip`` and its largest face."""
    rgb = read_clip(clip, 1)[0][0]
    faces = roi.face_boxes(rgb, settings.min_face)
    if not len(faces):
        raise ValueError(f"no face in the first frame of {clip}")
    face = max(faces, key=lambda box: box[2])
    result: dict = {"clip": clip.name, "face": face.tolist(), "seconds": seconds, "runs": []}
    for period in periods_s:
        for name, kind in (("sender", FaceRoi), ("whole_frame_only", WholeFrameOnly)):
            run = track_moving_face(rgb, face, period, seconds, kind(16, settings, True))
            result["runs"].append({"tracker": name, **run})
            print(
                f"moving face, peak {run['peak_speed_px_per_s']:.0f} px/s, {name}: in the "
                f"region in {100 * run['face_in_region_share']:.0f}% of {run['frames']} "
                f"frames, searches {run['searches']}"
            )
    return result
