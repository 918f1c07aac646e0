"""OpenCV's Haar-cascade face detector, with a NumPy evaluator where OpenCV lacks one.

OpenCV 4.x ships ``cv2.CascadeClassifier`` and the cascades (``cv2.data.haarcascades``);
OpenCV 5 moved both out of the main package (``opencv-python-headless`` 5 has neither). So
this module ships OpenCV's ``haarcascade_frontalface_default.xml`` (Rainer Lienhart's
stump-based 24x24 frontal-face cascade, Intel License Agreement, kept verbatim with its
header in ``shared/data/``) and evaluates it itself the way ``detectMultiScale`` does: an
image pyramid (``scale_factor``), a 24x24 window at every second position (every position
above a scale of 2), features normalised by the window's standard deviation, stages of
stumps, then OpenCV's ``groupRectangles`` (``min_neighbors``, eps 0.2). It skips none of
OpenCV's shortcuts' windows, so its boxes can differ from OpenCV's by a pixel or a
neighbour count; ``detector()`` prefers ``cv2.CascadeClassifier`` when it is there.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CASCADE_FILE = Path(__file__).with_name("data") / "haarcascade_frontalface_default.xml"
_SIGNS = np.array([1, -1, -1, 1])  # of the corners in ``_corners``' order
_CHUNK_ELEMENTS = 1 << 22  # candidates x corners gathered at once (bounds the memory)


@dataclass(frozen=True)
class _Stage:
    threshold: float
    rects: np.ndarray  # (K, R, 4) x, y, w, h of each stump's rectangles (window coordinates)
    weights: np.ndarray  # (K, R) rectangle weights (0 pads stumps with fewer rectangles)
    thresholds: np.ndarray  # (K,) stump thresholds (on the variance-normalised feature)
    left: np.ndarray  # (K,) value when the feature is below the threshold
    right: np.ndarray  # (K,) value otherwise


@dataclass(frozen=True)
class Cascade:
    """A parsed stump-based HAAR cascade (OpenCV's ``opencv-cascade-classifier`` format)."""

    width: int
    height: int
    stages: tuple[_Stage, ...]

    @classmethod
    def load(cls, path: str | Path) -> Cascade:
        root = ElementTree.parse(path).getroot().find("cascade")
        if root is None or root.findtext("featureType", "").strip() != "HAAR":
            raise ValueError(f"{path} is not an OpenCV HAAR cascade")
        features = []
        for feature in root.find("features"):
            if feature.findtext("tilted", "0").strip() not in ("", "0"):
                raise ValueError("tilted Haar features are not supported")
            rects = [[float(v) for v in r.text.split()] for r in feature.find("rects")]
            features.append(rects)
        stages = []
        for stage in root.find("stages"):
            nodes, leaves = [], []
            for weak in stage.find("weakClassifiers"):
                node = weak.findtext("internalNodes").split()
                if len(node) != 4 or node[:2] != ["0", "-1"]:
                    raise ValueError("only stump (depth-1) cascades are supported")
                nodes.append((int(node[2]), float(node[3])))
                leaves.append([float(v) for v in weak.findtext("leafValues").split()])
            count = max(len(features[i]) for i, _ in nodes)
            rects = np.zeros((len(nodes), count, 4))
            weights = np.zeros((len(nodes), count))
            for k, (index, _) in enumerate(nodes):
                for r, (x, y, w, h, weight) in enumerate(features[index]):
                    rects[k, r] = (x, y, w, h)
                    weights[k, r] = weight
            stages.append(
                _Stage(
                    float(stage.findtext("stageThreshold")),
                    rects.astype(np.int64),
                    weights,
                    np.array([t for _, t in nodes]),
                    np.array([leaf[0] for leaf in leaves]),
                    np.array([leaf[1] for leaf in leaves]),
                )
            )
        return cls(int(root.findtext("width")), int(root.findtext("height")), tuple(stages))

    def _windows_at(self, gray: np.ndarray, step: int) -> np.ndarray:
        """``(n, 2)`` top-left ``(x, y)`` of the windows of ``gray`` that pass every stage."""
        height, width = gray.shape
        pitch = width + 1
        values = gray.astype(np.int64)
        integral = np.zeros((height + 1, pitch), dtype=np.int64)
        integral[1:, 1:] = values.cumsum(0).cumsum(1)
        squares = np.zeros((height + 1, pitch), dtype=np.int64)
        squares[1:, 1:] = (values * values).cumsum(0).cumsum(1)
        # Gathering int32 is about 3x faster than float64; the weighted corner terms of one
        # stump (at most 12 terms, weights up to 3) must then stay below 2**31.
        if 12 * 3 * int(integral[-1, -1]) < 2**31:
            integral = integral.astype(np.int32)
        ys = np.arange(0, height - self.height + 1, step)
        xs = np.arange(0, width - self.width + 1, step)
        if not ys.size or not xs.size:
            return np.zeros((0, 2), dtype=np.int64)
        origin = (ys[:, None] * pitch + xs[None, :]).ravel()
        flat, flat_squares = integral.ravel(), squares.ravel()
        # OpenCV normalises by the window less a one-pixel border.
        norm = _corners(np.array([[[1, 1, self.width - 2, self.height - 2]]]), pitch)[0, 0]
        area = (self.width - 2) * (self.height - 2)
        total = (flat[origin[:, None] + norm] @ _SIGNS).astype(np.float64)
        total_squares = (flat_squares[origin[:, None] + norm] @ _SIGNS).astype(np.float64)
        spread = area * total_squares - total * total
        scale = 1.0 / np.where(spread > 0, np.sqrt(np.maximum(spread, 0)), 1.0)
        for stage in self.stages:
            if not origin.size:
                break
            # Terms ordered (rectangle corner, stump) so that summing over the corners adds
            # whole rows (fast) instead of reducing many tiny rows.
            corners = _corners(stage.rects, pitch).transpose(1, 2, 0).reshape(-1)
            coefficients = (stage.weights.T[:, None, :] * _SIGNS[None, :, None]).reshape(-1)
            coefficients = coefficients.astype(flat.dtype)
            stumps = stage.weights.shape[0]
            chunk = max(1, _CHUNK_ELEMENTS // corners.size)
            scores = np.empty(origin.size)
            for start in range(0, origin.size, chunk):
                part = origin[start : start + chunk]
                terms = flat[part[:, None] + corners[None, :]]
                terms *= coefficients
                feature = terms.reshape(part.size, -1, stumps).sum(axis=1, dtype=np.int64)
                feature = feature * scale[start : start + chunk, None]
                scores[start : start + chunk] = np.where(
                    feature < stage.thresholds, stage.left, stage.right
                ).sum(axis=1)
            passed = scores >= stage.threshold
            origin, scale = origin[passed], scale[passed]
        return np.stack([origin % pitch, origin // pitch], axis=1)

    def detect(
        self,
        gray: np.ndarray,
        scale_factor: float = 1.1,
        min_neighbors: int = 3,
        min_size: int = 0,
        max_size: int = 0,
    ) -> np.ndarray:
        """``(n, 4)`` ``int`` boxes ``(x, y, w, h)`` of faces in a ``uint8`` gray image, like
        ``cv2.CascadeClassifier.detectMultiScale`` with the same arguments."""
        if gray.ndim != 2 or gray.dtype != np.uint8:
            raise ValueError("detect() takes a 2-D uint8 gray image")
        height, width = gray.shape
        found = []
        factor = 1.0
        while True:
            window = round(self.width * factor), round(self.height * factor)
            size = round(width / factor), round(height / factor)
            if size[0] < self.width or size[1] < self.height:
                break
            if max_size and (window[0] > max_size or window[1] > max_size):
                break
            if window[0] >= min_size and window[1] >= min_size:
                scaled = cv2.resize(gray, size, interpolation=cv2.INTER_LINEAR)
                for x, y in self._windows_at(scaled, 1 if factor > 2 else 2):
                    found.append((round(x * factor), round(y * factor), *window))
            factor *= scale_factor
        return group_rectangles(np.array(found, dtype=np.int64).reshape(-1, 4), min_neighbors)


def _corners(rects: np.ndarray, pitch: int) -> np.ndarray:
    """Offsets in a flattened integral image (row pitch ``pitch``) of the four corners of
    ``rects`` ``(..., 4)`` (x, y, w, h): top-left, top-right, bottom-left, bottom-right."""
    x, y, w, h = (rects[..., i] for i in range(4))
    top, bottom = y * pitch, (y + h) * pitch
    return np.stack([top + x, top + x + w, bottom + x, bottom + x + w], axis=-1)


def group_rectangles(rects: np.ndarray, min_neighbors: int, eps: float = 0.2) -> np.ndarray:
    """OpenCV's ``groupRectangles``: cluster similar boxes, average each cluster, keep those
    with more than ``min_neighbors`` members and drop small ones inside larger ones."""
    if min_neighbors <= 0 or not len(rects):
        return rects
    x, y, w, h = (rects[:, i].astype(np.float64) for i in range(4))
    delta = eps * (np.minimum(w[:, None], w[None]) + np.minimum(h[:, None], h[None])) * 0.5
    similar = (
        (np.abs(x[:, None] - x[None]) <= delta)
        & (np.abs(y[:, None] - y[None]) <= delta)
        & (np.abs((x + w)[:, None] - (x + w)[None]) <= delta)
        & (np.abs((y + h)[:, None] - (y + h)[None]) <= delta)
    )
    parent = list(range(len(rects)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in np.argwhere(np.triu(similar, 1)):
        parent[root(int(i))] = root(int(j))
    labels = np.array([root(i) for i in range(len(rects))])
    classes = np.unique(labels)
    counts = np.array([np.count_nonzero(labels == c) for c in classes])
    means = np.array([_round_half_away(rects[labels == c].mean(axis=0)) for c in classes])
    kept = []
    for i, (r1, n1) in enumerate(zip(means, counts, strict=True)):
        if n1 <= min_neighbors:
            continue
        inside = False
        for j, (r2, n2) in enumerate(zip(means, counts, strict=True)):
            if j == i or n2 <= min_neighbors:
                continue
            dx, dy = int(r2[2] * eps), int(r2[3] * eps)
            if (
                r1[0] >= r2[0] - dx
                and r1[1] >= r2[1] - dy
                and r1[0] + r1[2] <= r2[0] + r2[2] + dx
                and r1[1] + r1[3] <= r2[1] + r2[3] + dy
                and (n2 > max(3, n1) or n1 < 3)
            ):
                inside = True
                break
        if not inside:
            kept.append(r1)
    return np.array(kept, dtype=np.int64).reshape(-1, 4)


def _round_half_away(values: np.ndarray) -> np.ndarray:
    return (np.sign(values) * np.floor(np.abs(values) + 0.5)).astype(np.int64)


@functools.cache
def frontal_face_cascade() -> Cascade:
    """The shipped ``haarcascade_frontalface_default.xml``, parsed once."""
    return Cascade.load(CASCADE_FILE)


def detector(prefer_opencv: bool = True):
    """A function ``gray uint8 -> (n, 4) boxes`` with ``detectMultiScale``'s keyword
    arguments: OpenCV's own ``CascadeClassifier`` (OpenCV 4.x) when available and asked for,
    else this module's evaluator of the same cascade."""
    if prefer_opencv and hasattr(cv2, "CascadeClassifier"):
        path = Path(getattr(getattr(cv2, "data", None), "haarcascades", "") or "")
        path = path / CASCADE_FILE.name
        classifier = cv2.CascadeClassifier(str(path if path.is_file() else CASCADE_FILE))
        if not classifier.empty():

            def opencv(gray, scale_factor=1.1, min_neighbors=3, min_size=0, max_size=0):
                boxes = classifier.detectMultiScale(
                    gray,
                    scaleFactor=scale_factor,
                    minNeighbors=min_neighbors,
                    minSize=(min_size, min_size),
                    maxSize=(max_size, max_size),
                )
                return np.asarray(boxes, dtype=np.int64).reshape(-1, 4)

            return opencv
    return frontal_face_cascade().detect
