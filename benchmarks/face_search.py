"""Does a search near the last faces find what a whole-frame scan finds, and how fast?

A live sender with ``--roi face`` scans the whole frame for faces only now and then and in
between searches near the faces it knows (``shared.roi.face_boxes_near``). On each clip,
every ``step``-th of the first ``frames`` frames is scanned whole (``face_boxes``); each
such frame after one with a face is also searched near the previous scan's boxes, as the
sender would ``step`` frames later. A face of the whole-frame scan counts as *expected*
when its centre lies within half a box of a known box's centre (a face the near search is
meant to follow), and as *found again* when the near search returns a box within
``tolerance_px`` of it in every coordinate. Times are single-thread wall-clock ms.

Writes ``OUT/face_search.json``.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from shared import roi
from shared.roi import RoiSettings

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


def run_face_search(
    videos: str,
    out: str,
    frames: int = 90,
    step: int = RoiSettings.interval,
    patterns: tuple[str, ...] = DEFAULT_CLIPS,
    settings: RoiSettings | None = None,
    tolerance_px: int = 8,
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
    (out_dir / "face_search.json").write_text(json.dumps(results, indent=2))
    return results
