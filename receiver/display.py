"""What the receiver does with decoded frames besides statistics: a window with an overlay
(``--show``), a video file (``--record``), and plots at the end of a run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from .stats import FrameRecord

WINDOW = "latentcast receiver"
MAX_WINDOW_SIZE = (1600, 900)  # pixels: the window's first size fits a laptop screen


class DisplayUnavailable(RuntimeError):
    """``--show`` cannot open a window here; the message says why and what to do."""


# Opens and closes a window in a child process: Qt aborts the whole process (SIGABRT) when
# it cannot reach the display, e.g. a stale DISPLAY of an SSH session, so the receiver asks
# a throwaway process first.
_WINDOW_PROBE = (
    "import cv2; cv2.namedWindow('latentcast probe'); cv2.waitKey(1); cv2.destroyAllWindows()"
)
PROBE_TIMEOUT_S = 30.0


def opencv_has_gui() -> bool:
    """Whether this OpenCV build has a GUI backend (not opencv-python-headless)."""
    info = cv2.getBuildInformation()
    gui_line = next((line for line in info.splitlines() if "GUI:" in line), "")
    return gui_line.split(":")[-1].strip().upper() not in ("", "NONE", "NO")


def gui_problem() -> str | None:
    """Why OpenCV cannot open a window on this machine, or ``None`` when it can. Takes
    0.3-1 s (a child process opens a test window) when the quick checks pass."""
    if not opencv_has_gui():
        return (
            "this OpenCV build has no GUI support (opencv-python-headless); install the GUI "
            "build in its place: pip uninstall -y opencv-python-headless && pip install "
            "opencv-python. Use --record out.mp4 to save the video instead."
        )
    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if sys.platform.startswith("linux") and not display:
        return "no display (DISPLAY is not set, e.g. an SSH session without -X); use --record"
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _WINDOW_PROBE],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return f"OpenCV did not open a test window within {PROBE_TIMEOUT_S:.0f} s; use --record"
    if probe.returncode != 0:
        lines = [line.strip() for line in probe.stderr.splitlines() if line.strip()]
        reason = lines[0] if lines else f"exit status {probe.returncode}"
        where = f" on display {display}" if display else ""
        return f"OpenCV cannot open a window{where} ({reason}); use --record out.mp4"
    return None


def overlay(bgr: np.ndarray, text: list[str]) -> np.ndarray:
    """A copy of ``bgr`` with lines of ``text`` in the top-left corner on a dark band."""
    out = bgr.copy()
    height = 18 * len(text) + 8
    out[:height, : min(out.shape[1], 330)] //= 3
    for i, line in enumerate(text):
        cv2.putText(out, line, (6, 18 * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255))
    return out


class FrameSink:
    """Shows and/or records decoded frames. ``show`` raises ``DisplayUnavailable`` up front."""

    def __init__(self, show: bool, record: str | None, fps: float = 30.0) -> None:
        if show and (problem := gui_problem()):
            raise DisplayUnavailable(f"--show: {problem}")
        self.show = show
        self.record_path = record
        self.fps = fps
        self.writer: cv2.VideoWriter | H264Writer | None = None
        self.size: tuple[int, int] | None = None  # the video's (width, height)
        self.closed_by_user = False
        self.window_open = False

    def add(self, rgb: np.ndarray, lines: list[str]) -> None:
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if self.record_path and self.writer is None:
            self._open_writer((bgr.shape[1], bgr.shape[0]))
        if self.writer is not None and (bgr.shape[1], bgr.shape[0]) == self.size:
            self.writer.write(bgr)  # a video file has one frame size; others are skipped
        if self.show:
            if not self.window_open:
                self._open_window((bgr.shape[1], bgr.shape[0]))
            elif self._window_closed():
                self.closed_by_user = True
                return
            cv2.imshow(WINDOW, overlay(bgr, lines))
            key = cv2.waitKey(1) & 0xFF
            # The window's close button hides it; imshow would open a new one next frame.
            if key in (ord("q"), 27) or self._window_closed():
                self.closed_by_user = True

    @staticmethod
    def _window_closed() -> bool:
        try:
            return cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:  # Qt: the window is gone altogether
            return True

    def _open_window(self, size: tuple[int, int]) -> None:
        """A resizable window without OpenCV's toolbar, first fitted into
        ``MAX_WINDOW_SIZE`` (pixels, width x height) keeping the video's aspect ratio."""
        flags = cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | getattr(cv2, "WINDOW_GUI_NORMAL", 0)
        cv2.namedWindow(WINDOW, flags)
        scale = min(1.0, MAX_WINDOW_SIZE[0] / size[0], MAX_WINDOW_SIZE[1] / size[1])
        cv2.resizeWindow(WINDOW, max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
        self.window_open = True

    def _open_writer(self, size: tuple[int, int]) -> None:
        if Path(self.record_path).suffix.lower() in H264_SUFFIXES:
            try:
                self.writer, self.size = H264Writer(self.record_path, self.fps, size), size
                return
            except (ImportError, OSError, ValueError):  # no PyAV or no libx264: OpenCV's
                pass
        fourcc = cv2.VideoWriter_fourcc(*"mp4v")
        writer = cv2.VideoWriter(self.record_path, fourcc, self.fps, size)
        if not writer.isOpened():
            # The stream goes on: its statistics and --out files are still wanted.
            print(
                f"receiver: warning: OpenCV cannot write {self.record_path} (use a .mp4 "
                "name); not recording",
                file=sys.stderr,
            )
            self.record_path = None
            return
        self.writer, self.size = writer, size

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
        if self.show:
            cv2.destroyAllWindows()


H264_SUFFIXES = (".mp4", ".mkv", ".mov")


class H264Writer:
    """``--record`` as H.264 (libx264 through PyAV, 4:2:0, CRF 18, one thread), which
    browsers and phones play; OpenCV's wheels have no H.264 encoder, only MPEG-4 part 2.
    Frames of odd width or height get one edge column or row repeated (4:2:0 needs even
    sides). Same interface as ``cv2.VideoWriter``: ``write(bgr)``, ``release()``. Raises
    ``ImportError`` without PyAV and ``OSError``/``ValueError`` when the file or encoder
    cannot be opened."""

    def __init__(self, path: str, fps: float, size: tuple[int, int]) -> None:
        import av

        self.rate = max(1, round(fps))
        self.container = av.open(path, "w")
        try:
            stream = self.container.add_stream("libx264", rate=self.rate)
            stream.width, stream.height = size[0] + size[0] % 2, size[1] + size[1] % 2
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "18", "preset": "veryfast"}
            stream.codec_context.thread_count = 1  # the decoder needs the other cores
        except Exception:
            self.container.close()
            raise
        self.stream = stream
        self.frames = 0

    def write(self, bgr: np.ndarray) -> None:
        import av

        pad = ((0, self.stream.height - bgr.shape[0]), (0, self.stream.width - bgr.shape[1]))
        if pad[0][1] or pad[1][1]:
            bgr = np.pad(bgr, (*pad, (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24")
        frame.pts = self.frames
        self.frames += 1
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def release(self) -> None:
        for packet in self.stream.encode():  # flush the encoder's delayed frames
            self.container.mux(packet)
        self.container.close()


def plot_run(records: list[FrameRecord], path: Path) -> None:
    """kbps, PSNR and latency over time (per 1-second bins) as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not records:
        return
    start = records[0].arrival_s
    seconds = np.array([r.arrival_s - start for r in records])
    bins = np.floor(seconds).astype(int)
    kbps = np.bincount(bins, weights=[8 * r.message_bytes / 1000 for r in records])
    fig, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    axes[0].plot(np.arange(len(kbps)) + 0.5, kbps, lw=1)
    axes[0].set_ylabel("kbps")
    psnr = [(t, r.psnr_db) for t, r in zip(seconds, records, strict=True) if r.psnr_db]
    if psnr:
        axes[1].plot(*zip(*psnr, strict=True), ".", ms=2)
    axes[1].set_ylabel("PSNR (dB)")
    axes[2].plot(seconds, [r.latency_ms for r in records], ".", ms=2)
    axes[2].set_ylabel("latency (ms)")
    axes[2].set_xlabel("seconds since the first frame")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def labelled(rgb: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``rgb`` with ``text`` in its top-left corner on a dark band."""
    out = rgb.copy()
    out[:22, : min(out.shape[1], 8 * len(text) + 12)] //= 3
    cv2.putText(out, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255))
    return out


def code_view(
    latents: np.ndarray,
    rgb: np.ndarray,
    stride: int,
    original: np.ndarray | None = None,
    with_original: bool = False,
) -> np.ndarray:
    """``--show-code``: the reconstruction, the code map (``shared.codemap``) to its right
    and, ``with_original``, the sender's original frame (a gray panel saying so when
    ``original`` is ``None``, i.e. it did not arrive): one RGB image two or three frames
    wide. The statistics overlay, drawn top left, stays on the reconstruction."""
    from shared.codemap import code_image, zero_share

    height, width = rgb.shape[:2]
    code = labelled(
        code_image(latents, height, width, stride), f"code: {100 * zero_share(latents):.0f}% zeros"
    )
    panels = [rgb, code]
    if with_original:
        if original is None:
            panels.append(labelled(np.full_like(rgb, 64), "original: not received"))
        else:
            panels.append(labelled(original, "original"))
    return np.concatenate(panels, axis=1)


class StripSampler:
    """Keeps a few (original, latents, reconstruction) triples spread over a whole run, in
    bounded memory: every ``step``-th offered triple is kept; when ``capacity`` are held,
    every other one is dropped and ``step`` doubles. The newest offer is kept too."""

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = max(2, capacity)
        self.samples: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        self.step = 1
        self.offered = 0
        self.last: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None

    def offer(self, seq: int, original: np.ndarray, latents: np.ndarray, reconstruction):
        sample = (seq, original, latents, reconstruction)
        self.last = sample
        if self.offered % self.step == 0:
            self.samples.append(sample)
            if len(self.samples) >= self.capacity:
                self.samples = self.samples[::2]
                self.step *= 2
        self.offered += 1

    def pick(self, rows: int = 4) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """Up to ``rows`` triples evenly spread from the first kept to the newest."""
        kept = list(self.samples)
        if self.last is not None and (not kept or kept[-1][0] != self.last[0]):
            kept.append(self.last)
        if len(kept) <= rows:
            return kept
        chosen = np.unique(np.round(np.linspace(0, len(kept) - 1, rows)).astype(int))
        return [kept[i] for i in chosen]


def write_strip(samples, path: Path, stride: int, max_width: int = 1200) -> bool:
    """``strip.png``: one row per sample, original | code | reconstruction, labelled with
    the frame number, the code's zero share and the PSNR. Returns whether it was written."""
    from shared.codemap import code_image, zero_share
    from shared.metrics import psnr

    rows = []
    for seq, original, latents, reconstruction in samples:
        height, width = original.shape[:2]
        code = code_image(latents, height, width, stride)
        row = np.concatenate(
            [
                labelled(original, f"original, frame {seq}"),
                labelled(code, f"code: {100 * zero_share(latents):.0f}% zeros"),
                labelled(
                    reconstruction, f"reconstruction: {psnr(original, reconstruction):.2f} dB"
                ),
            ],
            axis=1,
        )
        if rows and row.shape[1] != rows[0].shape[1]:  # another frame size: match widths
            scale = rows[0].shape[1] / row.shape[1]
            row = cv2.resize(row, (rows[0].shape[1], max(1, round(row.shape[0] * scale))))
        rows.append(row)
    if not rows:
        return False
    strip = np.concatenate(rows, axis=0)
    if strip.shape[1] > max_width:
        scale = max_width / strip.shape[1]
        size = (max_width, round(strip.shape[0] * scale))
        strip = cv2.resize(strip, size, interpolation=cv2.INTER_AREA)
    return bool(cv2.imwrite(str(path), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR)))
