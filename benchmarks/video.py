"""Video rate-distortion: our codec intra-only and with predicted frames, beside libx264.

For each clip and each quality level, the first ``frames`` frames go through the real
sender path (``VideoEncoder``) and the real receiver path (``VideoDecoder``): once with every
frame a key frame (intra-only) and once with predicted frames and the same key-frame
interval as x264. Bits are whole wire messages (msgpack header, per-slice CRCs, payload);
PSNR is over RGB, peak 255, averaged over frames. In the same run libx264 (PyAV,
``preset=veryfast``, ``tune=zerolatency``, same key-frame interval, no scene-cut key frames)
codes the same frames in bitrate mode at each of our predicted-frame bitrates (matched
bitrates) and FFmpeg decodes them; its bits are the packets' bytes.

Writes ``OUT/video.json`` (per clip: the points of each codec, BD-rates of inter vs intra and
of ours vs x264) and ``OUT/video.png`` (bitrate vs PSNR per clip).
"""

from __future__ import annotations

import json
import statistics
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from shared import wire
from shared.codec import ImageCodec
from shared.codemap import zero_share
from shared.metrics import psnr
from shared.video import VideoDecoder, VideoEncoder, VideoSettings

from .bd import bd_rate

DEFAULT_CLIPS = ("akiyo_cif.mp4", "mother_daughter_cif.mp4", "webcam_asl_*.mkv")


def read_clip(path: Path, count: int) -> tuple[list[np.ndarray], float]:
    """The first ``count`` frames as RGB and the clip's frame rate."""
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while len(frames) < count:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    if not frames:
        raise ValueError(f"cannot read frames from {path}")
    return frames, fps


def code_ours(
    codec: ImageCodec, frames: list[np.ndarray], level: int, settings: VideoSettings, fps: float
) -> dict:
    """Encode and decode ``frames`` as a stream; kbps from whole wire messages."""
    encoder, decoder = VideoEncoder(codec, settings), VideoDecoder(codec)
    message_bytes, psnrs, encode_ms, decode_ms, zeros, keys = [], [], [], [], [], 0
    for seq, rgb in enumerate(frames):
        started = time.perf_counter()
        coded = encoder.encode(rgb, level)
        encoded = time.perf_counter()
        message = wire.FrameMessage.of("bench", seq, 0, codec.model_hash, coded)
        parts = wire.encode_frame(message)
        parsed = wire.decode(parts)
        decoded = decoder.decode(parsed, seq)
        finished = time.perf_counter()
        message_bytes.append(len(parts[1]))
        psnrs.append(psnr(rgb, decoded.rgb))
        zeros.append(zero_share(decoded.latents))
        encode_ms.append(1000 * (encoded - started))
        decode_ms.append(1000 * (finished - encoded))
        keys += coded.kind == "key"
    height, width = frames[0].shape[:2]
    bits = 8 * sum(message_bytes)
    return {
        "level": level,
        "kbps": bits / (len(frames) / fps) / 1000,
        "bpp": bits / (len(frames) * height * width),
        "psnr": statistics.fmean(psnrs),
        "key_frames": keys,
        "zero_share": statistics.fmean(zeros),  # sparsity: share of decoded latents that are 0
        "encode_ms_median": statistics.median(encode_ms),
        "decode_ms_median": statistics.median(decode_ms),
    }


def code_x264(frames: list[np.ndarray], kbps: float, keyint: int, fps: float) -> dict:
    """libx264 at ``kbps`` (bitrate mode) with key frames every ``keyint`` frames."""
    import av

    height, width = frames[0].shape[:2]
    rate = Fraction(round(fps * 1000), 1000)
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height = width - width % 2, height - height % 2
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = 1 / rate
    encoder.framerate = rate
    encoder.bit_rate = int(kbps * 1000)
    encoder.options = {
        "preset": "veryfast",
        "tune": "zerolatency",
        "x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0",
        "threads": "1",
    }
    decoder = av.CodecContext.create("h264", "r")
    sizes, decoded = [], []

    def take(packets) -> None:
        for packet in packets:
            sizes.append(packet.size)
            decoded.extend(out.to_ndarray(format="rgb24") for out in decoder.decode(packet))

    cropped = [f[: encoder.height, : encoder.width] for f in frames]
    for index, rgb in enumerate(cropped):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = index
        take(encoder.encode(frame))
    take(encoder.encode(None))
    decoded.extend(out.to_ndarray(format="rgb24") for out in decoder.decode(None))
    if len(decoded) != len(cropped):
        raise RuntimeError(f"x264 returned {len(decoded)} of {len(cropped)} frames")
    bits = 8 * sum(sizes)
    return {
        "target_kbps": kbps,
        "kbps": bits / (len(frames) / fps) / 1000,
        "bpp": bits / (len(frames) * encoder.height * encoder.width),
        "psnr": statistics.fmean(psnr(a, b) for a, b in zip(cropped, decoded, strict=True)),
    }


def _bd(reference: list[dict], test: list[dict]) -> float | None:
    return bd_rate(
        [p["kbps"] for p in reference],
        [p["psnr"] for p in reference],
        [p["kbps"] for p in test],
        [p["psnr"] for p in test],
    )


def find_clips(videos: str, patterns: tuple[str, ...]) -> list[Path]:
    """The clips of ``videos`` matching ``patterns``, each checked to give a frame, so a
    broken clip is reported before the benchmark spends time on the others."""
    folder = Path(videos)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {videos}")
    clips = sorted({p for pattern in patterns for p in folder.glob(pattern)})
    if not clips:
        raise FileNotFoundError(f"no clips matching {', '.join(patterns)} in {videos}")
    for clip in clips:
        capture = cv2.VideoCapture(str(clip))
        readable = capture.read()[0]
        capture.release()
        if not readable:
            raise ValueError(f"cannot read frames from {clip}")
    return clips


def run_video(
    videos: str,
    out: str,
    model: str,
    frames: int = 150,
    keyframe_interval: int = VideoSettings.keyframe_interval,
    levels: list[int] | None = None,
    patterns: tuple[str, ...] = DEFAULT_CLIPS,
    x264: bool = True,
) -> dict:
    """Run the benchmark; returns what it writes to ``OUT/video.json``."""
    codec = ImageCodec.load(model, "cpu", "auto")
    chosen_levels = list(range(codec.levels)) if levels is None else levels
    for level in chosen_levels:
        codec.check_level(level)
    inter_settings = VideoSettings(keyframe_interval=keyframe_interval)
    intra_settings = VideoSettings(keyframe_interval=1)
    results: dict = {
        "model": model,
        "model_hash": codec.model_hash,
        "frames_per_clip": frames,
        "keyframe_interval": keyframe_interval,
        "settings": inter_settings.__dict__,
        "clips": {},
    }
    clips = find_clips(videos, patterns)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)  # before the work: a bad --out fails fast
    for clip in clips:
        rgb_frames, fps = read_clip(clip, frames)
        height, width = rgb_frames[0].shape[:2]
        entry: dict = {"frames": len(rgb_frames), "fps": fps, "size": f"{width}x{height}"}
        entry["intra"] = [
            code_ours(codec, rgb_frames, k, intra_settings, fps) for k in chosen_levels
        ]
        entry["inter"] = [
            code_ours(codec, rgb_frames, k, inter_settings, fps) for k in chosen_levels
        ]
        if x264:
            entry["x264"] = [
                code_x264(rgb_frames, point["kbps"], keyframe_interval, fps)
                for point in entry["inter"]
            ]
        entry["bd_rate_inter_vs_intra_pct"] = _bd(entry["intra"], entry["inter"])
        if x264:
            entry["bd_rate_inter_vs_x264_pct"] = _bd(entry["x264"], entry["inter"])
            entry["bd_rate_intra_vs_x264_pct"] = _bd(entry["x264"], entry["intra"])
        ratios = [
            a["kbps"] / b["kbps"] for a, b in zip(entry["intra"], entry["inter"], strict=True)
        ]
        entry["intra_over_inter_bits_same_level_median"] = statistics.median(ratios)
        results["clips"][clip.name] = entry
        print_clip(clip.name, entry)
    (out_dir / "video.json").write_text(json.dumps(results, indent=2))
    plot(results, out_dir / "video.png")
    return results


def print_clip(name: str, entry: dict) -> None:
    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:+.1f}%"

    print(f"{name} ({entry['size']}, {entry['frames']} frames)")
    print("  level | intra kbps  dB   zeros | inter kbps  dB   zeros | x264 kbps  dB")
    for i, (a, b) in enumerate(zip(entry["intra"], entry["inter"], strict=True)):
        x = entry.get("x264", [None] * len(entry["inter"]))[i]
        x_text = f"{x['kbps']:9.1f} {x['psnr']:5.2f}" if x else "-"
        print(
            f"  {a['level']:5d} | {a['kbps']:10.1f} {a['psnr']:5.2f} "
            f"{100 * a['zero_share']:4.0f}% | {b['kbps']:10.1f} {b['psnr']:5.2f} "
            f"{100 * b['zero_share']:4.0f}% | {x_text}"
        )
    print(
        f"  BD-rate inter vs intra {fmt(entry['bd_rate_inter_vs_intra_pct'])}, "
        f"inter vs x264 {fmt(entry.get('bd_rate_inter_vs_x264_pct'))}"
    )


def plot_clips(clips: dict, path: Path, title: str, draw) -> None:
    """One log-kbps vs PSNR panel per clip, four to a row, written to ``path``;
    ``draw(axis, name, entry)`` plots a clip's curves and returns the panel's title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    columns = min(4, len(clips))
    rows = -(-len(clips) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    for axis, (name, entry) in zip(axes.ravel(), clips.items(), strict=False):
        axis.set_title(draw(axis, name, entry), fontsize=9)
        axis.set_xscale("log")
        axis.xaxis.set_minor_formatter(NullFormatter())  # decades only: minor labels collide
        axis.set_xlabel("kbps")
        axis.set_ylabel("PSNR-RGB (dB)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    for axis in axes.ravel()[len(clips) :]:
        axis.axis("off")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot(results: dict, path: Path) -> None:
    styles = {
        "intra": ("ours intra-only", "o-"),
        "inter": ("ours inter", "s-"),
        "x264": ("x264", "^--"),
    }

    def draw(axis, name: str, entry: dict) -> str:
        for key, (label, style) in styles.items():
            if key in entry:
                points = sorted(entry[key], key=lambda p: p["kbps"])
                axis.plot(
                    [p["kbps"] for p in points],
                    [p["psnr"] for p in points],
                    style,
                    label=label,
                    ms=3,
                )
        return f"{name} ({entry['size']})"

    title = (
        f"{results['model']}: {results['frames_per_clip']} frames per clip, key frame every "
        f"{results['keyframe_interval']}"
    )
    plot_clips(results["clips"], path, title, draw)
