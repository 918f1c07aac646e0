"""Region-of-interest coding: faces get the bits, the background less care.

The sender finds faces with OpenCV's frontal-face Haar cascade (``shared.haar``) every
``interval`` frames and keeps the last boxes in between (and through up to ``hold``
detections that find nothing). A live sender scans the whole frame now and then and, in
between, only near the faces it knows (``face_boxes_near``, a fifteenth of a whole-frame
scan's time), and moves the region with a face's velocity, so the region follows a moving
head. Each face box is widened to take in hair, ears, neck and
shoulders (``RoiSettings.margin_*``); the union of these regions is the *region of
interest*. On the latent grid (one position per ``stride x stride`` pixels) a position is
inside when its cell touches the region; outside positions get a ``QualityMap``
(``shared.inter``) that quantizes them more coarsely: towards zero on key frames, towards
the prediction (and skipped more readily) on predicted frames, with a ramp of ``feather``
positions between the two so the edge does not show as a seam. Inside, coding is plain.

Nothing about the bitstream changes: the decoder sees ordinary latents. The bits saved
outside pay for a higher quality level overall (with ``--rate-kbps`` the rate controller
spends them by itself), which is what puts more bits inside the region at the same rate.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from .haar import detector, group_rectangles
from .inter import QualityMap

ROI_MODES = ("face",)


@dataclass(frozen=True)
class RoiSettings:
    """How the region is found and how much coarser the outside is coded.

    Attributes:
        interval: run the face detector every this many frames.
        hold: keep the last boxes through this many detections that find no face.
        min_face: faces smaller than this share of the frame height are not looked for
            (a face in a video call is larger; skipping small scales makes detection
            several times faster).
        margin_side, margin_top, margin_bottom: the face box grows by these multiples of
            its width (each side) and height (above: hair; below: chin, neck, shoulders).
        key_deadzone: outside, key-frame latents become 0 while ``|y| < 0.5 + this``.
        deadzone: outside, predicted-frame latents keep the prediction while within
            ``0.5 + VideoSettings.deadzone + this`` of it.
        skip_l1: outside, added to ``VideoSettings.skip_l1`` (positions whose residual L1
            norm is at most the sum are skipped).
        feather: latent positions over which the map ramps from inside to outside.
        search_margin: a search near a known face looks this many multiples of the face's
            width (each side) and height (above, below) beyond its box.
        search_span: ... and for faces from the box's size divided by this to the size
            times this.
        max_busy: in the background, the detector's share of the time at most (the NumPy
            cascade takes about 0.3 s per whole 640x480 frame on one core here, longer than
            10 frames at 30 fps, and would otherwise run without pause beside the encoder;
            ``python -m benchmarks speed`` measures it). While a face is followed (known, and
            the last near search found one), searches near the faces get ``near_share`` of
            it and whole-frame scans (which find new faces) the rest; otherwise
            whole-frame scans get all of it.
            After a detection of ``t`` seconds, the next of its kind waits
            ``t * (1 / share - 1)``.
        near_share: see ``max_busy``.
    """

    interval: int = 10
    hold: int = 3
    min_face: float = 1 / 8
    margin_side: float = 0.3
    margin_top: float = 0.4
    margin_bottom: float = 0.6
    key_deadzone: float = 4.0
    deadzone: float = 3.0
    skip_l1: int = 16
    feather: int = 1
    search_margin: float = 0.5
    search_span: float = 1.2
    max_busy: float = 0.1
    near_share: float = 2 / 3

    def __post_init__(self) -> None:
        if self.interval < 1 or self.hold < 0 or self.feather < 0:
            raise ValueError("interval must be >= 1, hold and feather >= 0")
        if min(self.key_deadzone, self.deadzone, self.skip_l1) < 0:
            raise ValueError("the outside's deadzones and skip threshold must be >= 0")
        if not 0 < self.max_busy <= 1:
            raise ValueError("max_busy must be in (0, 1]")
        if not 0 < self.near_share < 1:
            raise ValueError("near_share must be in (0, 1)")
        if self.search_margin < 0 or self.search_span < 1:
            raise ValueError("search_margin must be >= 0 and search_span >= 1")


_SCALE_FACTOR, _MIN_NEIGHBORS = 1.1, 3  # detectMultiScale's


def face_boxes(rgb: np.ndarray, min_face: float = RoiSettings.min_face) -> np.ndarray:
    """``(n, 4)`` face boxes ``(x, y, w, h)`` in an ``(H, W, 3)`` ``uint8`` RGB frame."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return _detect()(gray, _SCALE_FACTOR, _MIN_NEIGHBORS, _smallest_face(gray, min_face))


def _smallest_face(gray: np.ndarray, min_face: float) -> int:
    return max(24, int(gray.shape[0] * min_face))


def face_boxes_near(
    rgb: np.ndarray, known: np.ndarray, settings: RoiSettings = RoiSettings()
) -> np.ndarray:
    """Faces near the ``known`` boxes ``(n, 4)`` ``(x, y, w, h)`` of an earlier frame, in
    the same form as ``face_boxes`` and with the same cascade, but only within
    ``settings.search_margin`` of each box and at sizes within ``settings.search_span`` of
    it: a face that moved or turned a little is found again at a fraction of a whole-frame
    scan's cost; a new face elsewhere is not.

    Overlapping search areas are searched as one, and the raw detections of all areas are
    grouped together (OpenCV's ``groupRectangles``), as a whole-frame scan groups them."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    smallest = _smallest_face(gray, settings.min_face)
    areas = []  # [x0, y0, x1, y1, smallest face, largest face]
    for x, y, w, h in np.asarray(known, dtype=np.float64).reshape(-1, 4):
        margin_x, margin_y = settings.search_margin * w, settings.search_margin * h
        area = [
            max(0, int(x - margin_x)),
            max(0, int(y - margin_y)),
            min(width, int(np.ceil(x + w + margin_x))),
            min(height, int(np.ceil(y + h + margin_y))),
            max(smallest, int(w / settings.search_span)),
            int(np.ceil(max(w, h) * settings.search_span)),
        ]
        if area[2] > area[0] and area[3] > area[1]:  # (a face predicted off the frame: none)
            areas.append(area)
    found = []
    for x0, y0, x1, y1, low, high in _merge_overlapping(areas):
        if high < low or min(x1 - x0, y1 - y0) < low:
            continue
        crop = np.ascontiguousarray(gray[y0:y1, x0:x1])
        raw = _detect()(crop, _SCALE_FACTOR, 0, low, high)  # min_neighbors 0: ungrouped
        found.append(np.asarray(raw, dtype=np.int64).reshape(-1, 4) + [x0, y0, 0, 0])
    raw = np.concatenate(found) if found else np.zeros((0, 4), dtype=np.int64)
    return group_rectangles(raw, _MIN_NEIGHBORS)


def _merge_overlapping(areas: list[list[int]]) -> list[list[int]]:
    """Search areas ``[x0, y0, x1, y1, low, high]``, each group of overlapping ones
    replaced by their bounding box and the union of their size ranges."""

    def overlap(a: list[int], b: list[int]) -> bool:
        return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]

    merged = [list(area) for area in areas]
    i = 0
    while i < len(merged):
        j = next((j for j in range(i + 1, len(merged)) if overlap(merged[i], merged[j])), None)
        if j is None:
            i += 1
            continue
        a, b = merged[i], merged.pop(j)
        merged[i] = [
            min(a[0], b[0]),
            min(a[1], b[1]),
            max(a[2], b[2]),
            max(a[3], b[3]),
            min(a[4], b[4]),
            max(a[5], b[5]),
        ]
        i = 0  # the larger area may now overlap one before it
    return merged


_detector = None


def _detect():
    global _detector
    if _detector is None:
        _detector = detector()
    return _detector


def _velocities(before: np.ndarray, after: np.ndarray, frames: int, old: np.ndarray) -> np.ndarray:
    """``(len(after), 2)`` pixels per frame of each box of ``after``: its step from the box
    of ``before`` (``frames`` earlier) whose top-left corner, moved on by its velocity
    (``old``, aligned with ``before``; NaN: not known, not moved), is the nearest and less
    than a box width away; NaN for the others. (The last step alone, not an average with
    the old velocity: that lagged when a head turned back and lost it more often.)"""
    velocity = np.full((len(after), 2), np.nan)
    if not len(before) or frames <= 0:
        return velocity
    old = old if len(old) == len(before) else np.full((len(before), 2), np.nan)
    known = ~np.isnan(old).any(axis=1)
    expected = before[:, :2] + np.where(known[:, None], old, 0.0) * frames
    for i, (x, y, w, _) in enumerate(after):
        distance = np.hypot(expected[:, 0] - x, expected[:, 1] - y)
        j = int(distance.argmin())
        if distance[j] < w:
            velocity[i] = (np.array([x, y], dtype=np.float64) - before[j, :2]) / frames
    return velocity


def region_boxes(
    boxes: np.ndarray, height: int, width: int, settings: RoiSettings = RoiSettings()
) -> np.ndarray:
    """Face boxes widened by the settings' margins and clipped to the frame: ``(n, 4)``
    ``int`` ``(x0, y0, x1, y1)`` (end exclusive)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x, y, w, h = boxes.T
    regions = np.stack(
        [
            x - settings.margin_side * w,
            y - settings.margin_top * h,
            x + w + settings.margin_side * w,
            y + h + settings.margin_bottom * h,
        ],
        axis=1,
    )
    regions = np.round(regions).astype(np.int64)
    regions[:, 0::2] = np.clip(regions[:, 0::2], 0, width)
    regions[:, 1::2] = np.clip(regions[:, 1::2], 0, height)
    return regions


def pixel_mask(
    boxes: np.ndarray, height: int, width: int, settings: RoiSettings = RoiSettings()
) -> np.ndarray:
    """``(height, width)`` bool: the region of interest (union of the widened boxes)."""
    mask = np.zeros((height, width), dtype=bool)
    for x0, y0, x1, y1 in region_boxes(boxes, height, width, settings):
        mask[y0:y1, x0:x1] = True
    return mask


def outside_weight(mask: np.ndarray, stride: int, feather: int = 1) -> np.ndarray:
    """``(ceil(H / stride), ceil(W / stride))`` float in ``[0, 1]``: 0 at latent positions
    whose cell touches ``mask``, 1 from ``feather + 1`` positions away, a linear ramp in
    between (Euclidean distance on the latent grid)."""
    height, width = mask.shape
    rows, cols = -(-height // stride), -(-width // stride)
    padded = np.zeros((rows * stride, cols * stride), dtype=bool)
    padded[:height, :width] = mask
    inside = padded.reshape(rows, stride, cols, stride).any(axis=(1, 3))
    if not inside.any():
        return np.ones((rows, cols))
    if feather == 0:
        return (~inside).astype(np.float64)
    distance = cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.clip(distance / (feather + 1), 0.0, 1.0)


def quality_map(weight: np.ndarray, settings: RoiSettings = RoiSettings()) -> QualityMap:
    """The encoder's ``QualityMap`` from an outside weight (0 = inside, 1 = outside)."""
    return QualityMap(
        key_deadzone=settings.key_deadzone * weight,
        deadzone=settings.deadzone * weight,
        skip_l1=settings.skip_l1 * weight,
    )


class FaceRoi:
    """Tracks the face region of a stream and gives each frame its ``QualityMap``.

    ``update(rgb)`` once per frame runs the detector every ``interval`` frames and returns
    the face boxes in use; ``map_for(rgb)`` does the same and returns the quality map, or
    ``None`` while no face is known (plain coding).

    In place (``background=False``, what ``benchmarks roi`` runs) every detection scans the
    whole frame. In the background (a live sender) detections run on a worker thread, so
    the sender does not stall, and their boxes arrive a few frames later (the very first
    runs in place, so that the stream's first key frame already has its region). Each is a
    whole-frame scan when one is due under ``settings.max_busy``, else a search near the
    known faces (``face_boxes_near``), else none until the budget allows. A face found by
    two detections in a row (``_velocities``) gets a velocity
    (pixels per frame): near searches also look where it will be at their frame, and the
    region in use moves with it, for at most three intervals past its last detection.
    After a near search that finds nothing, only a whole-frame scan runs next.
    """

    def __init__(self, stride: int, settings: RoiSettings = RoiSettings(), background=False):
        self.stride = stride
        self.settings = settings
        self.boxes = np.zeros((0, 4), dtype=np.int64)  # face boxes (x, y, w, h) last found
        # of each box, pixels per frame (background only; NaN: not known yet)
        self.velocity = np.zeros((0, 2))
        self.frames = 0
        self.detections = 0
        self.misses = 0  # consecutive detections without a face
        self.searches = {"full": 0, "near": 0}  # detections run, by kind
        self.search_s = {"full": 0.0, "near": 0.0}  # their total time, by kind (s)
        self._pool = ThreadPoolExecutor(1, "roi") if background else None
        self._pending: Future | None = None
        self._boxes_frame = 0  # the frame the boxes were found in
        self._near_missed = False
        # the last search of each kind: when it ended and how long it took (monotonic s)
        self._last = {"full": (0.0, 0.0), "near": (0.0, 0.0)}
        self._lock = threading.Lock()

    def _take(self, found: np.ndarray, frame: int, kind: str) -> None:
        with self._lock:
            self.detections += 1
            self._near_missed = kind == "near" and not len(found)
            if len(found):
                if self._pool is not None:
                    self.velocity = _velocities(
                        self.boxes, found, frame - self._boxes_frame, self.velocity
                    )
                self.boxes, self.misses, self._boxes_frame = found, 0, frame
            else:
                self.misses += 1
                if self.misses > self.settings.hold:
                    self.boxes = np.zeros((0, 4), dtype=np.int64)
                    self.velocity = np.zeros((0, 2))

    def update(self, rgb: np.ndarray) -> np.ndarray:
        """Feed the next frame; returns the face boxes that apply to it."""
        if self._pending is not None and self._pending.done():
            self._take(*self._pending.result())
            self._pending = None
        if self.frames % self.settings.interval == 0:
            if self._pool is None or self.detections == 0:
                self._take(*self._search(rgb, "full", self.frames))
            elif self._pending is None:
                kind = self._due(time.monotonic())
                if kind is not None:
                    self._pending = self._pool.submit(self._search, rgb.copy(), kind, self.frames)
        frame = self.frames
        self.frames += 1
        with self._lock:
            return self._boxes_at(frame)

    def _boxes_at(self, frame: int) -> np.ndarray:
        """The boxes moved by their velocities to ``frame`` (for at most three
        intervals past their detection). Call with the lock held."""
        velocity = np.nan_to_num(self.velocity)  # not known: not moved
        if not len(self.boxes) or not velocity.any():
            return self.boxes
        frames = min(frame - self._boxes_frame, 3 * self.settings.interval)
        moved = self.boxes.astype(np.float64)
        moved[:, :2] += velocity * frames
        return np.round(moved).astype(np.int64)

    def _due(self, now: float) -> str | None:
        """The search the background budget allows at ``now``: ``"full"``, ``"near"`` (only
        while the last detection found a face) or ``None``."""
        with self._lock:
            tracking = bool(len(self.boxes)) and not self._near_missed
        budget = self.settings.max_busy
        if tracking:
            near = budget * self.settings.near_share
            shares = {"full": budget - near, "near": near}
        else:
            shares = {"full": budget}
        for kind, share in shares.items():
            ended, took = self._last[kind]
            if now >= ended + took * (1 / share - 1):
                return kind
        return None

    def _search(self, rgb: np.ndarray, kind: str, frame: int) -> tuple[np.ndarray, int, str]:
        started = time.monotonic()
        if kind == "near":
            with self._lock:  # where the faces were, and where they will be at ``frame``
                known = np.concatenate([self.boxes, self._boxes_at(frame)])
            found = face_boxes_near(rgb, known, self.settings)
        else:
            found = face_boxes(rgb, self.settings.min_face)
        done = time.monotonic()
        self._last[kind] = (done, done - started)
        self.searches[kind] += 1
        self.search_s[kind] += done - started
        return found, frame, kind

    def map_for(self, rgb: np.ndarray) -> QualityMap | None:
        """The frame's quality map (``update`` included), ``None`` when no face is known."""
        boxes = self.update(rgb)
        if not len(boxes):
            return None
        return self.map_of(boxes, *rgb.shape[:2])

    def map_of(self, boxes: np.ndarray, height: int, width: int) -> QualityMap:
        mask = pixel_mask(boxes, height, width, self.settings)
        return quality_map(outside_weight(mask, self.stride, self.settings.feather), self.settings)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
