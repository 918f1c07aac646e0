"""Region-of-interest coding vs uniform coding at equal bits, on talking-head clips.

For each clip the face detector (``shared.roi``, OpenCV's frontal-face cascade, every
``RoiSettings.interval`` frames, last boxes kept in between) runs once over the first
``frames`` frames; clips where it finds no face are left out. The widened face boxes of each
frame are both the encoder's region of interest and the *measuring mask*: PSNR inside is
over the pixels of that region, PSNR outside over the rest, PSNR overall over the frame
(RGB, peak 255, averaged over frames; inside/outside only over frames with a region).

Every quality level is coded twice through the real sender and receiver path
(``VideoEncoder`` -> wire message -> ``VideoDecoder``, key frame first, predicted frames
after): *uniform* (no map, today's encoder) and *roi* (the map of ``shared.roi``); bits
are whole wire messages. ROI coding spends fewer bits at a level, so the comparison is at
equal bits: each curve (PSNR vs log kbps, piecewise linear) is read at the uniform curve's
rates, and the mean difference over the overlapping rate range (a Bjøntegaard-style delta
PSNR) is reported for inside, outside and overall, ROI minus uniform.

Writes ``OUT/roi.json`` and ``OUT/roi.png`` (PSNR inside and outside vs kbps per clip).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict
from pathlib import Path

import numpy as np

from shared import wire
from shared.codec import ImageCodec
from shared.inter import QualityMap
from shared.metrics import PSNR_CAP_DB
from shared.roi import FaceRoi, RoiSettings, pixel_mask
from shared.video import VideoDecoder, VideoEncoder, VideoSettings

from .video import find_clips, plot_clips, read_clip

DEFAULT_CLIPS = ("akiyo_cif.mp4", "mother_daughter_cif.mp4", "webcam_asl_*.mkv")
MODES = ("uniform", "roi")


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float | None:
    """PSNR over the pixels where ``mask`` ``(H, W)`` is set (all channels), ``None`` when
    the mask is empty."""
    if not mask.any():
        return None
    diff = a[mask].astype(np.float64) - b[mask].astype(np.float64)
    error = float(np.mean(diff * diff))
    return PSNR_CAP_DB if error == 0 else min(PSNR_CAP_DB, 10 * np.log10(255.0**2 / error))


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def code_stream(
    codec: ImageCodec,
    frames: list[np.ndarray],
    level: int,
    settings: VideoSettings,
    fps: float,
    masks: list[np.ndarray],
    maps: list[QualityMap | None] | None,
) -> dict:
    """Encode, send through the wire format and decode ``frames``; PSNR inside/outside."""
    encoder, decoder = VideoEncoder(codec, settings), VideoDecoder(codec)
    message_bytes, inside, outside, overall, zeros = [], [], [], [], []
    for seq, rgb in enumerate(frames):
        quality = None if maps is None else maps[seq]
        coded = encoder.encode(rgb, level, quality=quality)
        message = wire.FrameMessage.of("bench", seq, 0, codec.model_hash, coded)
        parts = wire.encode_frame(message)
        decoded = decoder.decode(wire.decode(parts), seq)
        message_bytes.append(len(parts[1]))
        mask = masks[seq]
        inside.append(masked_psnr(rgb, decoded.rgb, mask))
        outside.append(masked_psnr(rgb, decoded.rgb, ~mask))
        overall.append(masked_psnr(rgb, decoded.rgb, np.ones_like(mask)))
        zeros.append(float(np.count_nonzero(decoded.latents == 0)) / decoded.latents.size)
    height, width = frames[0].shape[:2]
    bits = 8 * sum(message_bytes)
    return {
        "level": level,
        "kbps": bits / (len(frames) / fps) / 1000,
        "bpp": bits / (len(frames) * height * width),
        "psnr_inside": _mean(inside),
        "psnr_outside": _mean(outside),
        "psnr": _mean(overall),
        "zero_share": statistics.fmean(zeros),
    }


def read_at(points: list[dict], key: str, kbps: float) -> float | None:
    """``key`` of a rate curve at ``kbps`` (linear in log rate), ``None`` outside its range."""
    ordered = sorted((p for p in points if p[key] is not None), key=lambda p: p["kbps"])
    rates = np.log([p["kbps"] for p in ordered])
    if not len(rates) or not rates[0] <= np.log(kbps) <= rates[-1]:
        return None
    return float(np.interp(np.log(kbps), rates, [p[key] for p in ordered]))


def delta_psnr(reference: list[dict], test: list[dict], key: str, samples: int = 64):
    """Mean ``test - reference`` of ``key`` over the overlapping log-rate range (piecewise
    linear curves), or ``None`` without overlap."""
    low = max(min(p["kbps"] for p in reference), min(p["kbps"] for p in test))
    high = min(max(p["kbps"] for p in reference), max(p["kbps"] for p in test))
    if high <= low:
        return None
    grid = np.exp(np.linspace(np.log(low), np.log(high), samples))
    diffs = [read_at(test, key, k) - read_at(reference, key, k) for k in grid]
    return float(np.mean(diffs))


def compare(uniform: list[dict], roi: list[dict]) -> dict:
    """ROI minus uniform at equal bits: at each uniform point's rate, and on average."""
    at_levels = []
    for point in uniform:
        row = {"uniform_level": point["level"], "kbps": point["kbps"]}
        for key in ("psnr_inside", "psnr_outside", "psnr"):
            other = read_at(roi, key, point["kbps"])
            row[f"uniform_{key}"] = point[key]
            row[f"roi_{key}"] = other
            row[f"delta_{key}"] = None if other is None else other - point[key]
        row["roi_level"] = read_at(roi, "level", point["kbps"])
        at_levels.append(row)
    return {
        "at_uniform_rates": at_levels,
        "delta_inside_db": delta_psnr(uniform, roi, "psnr_inside"),
        "delta_outside_db": delta_psnr(uniform, roi, "psnr_outside"),
        "delta_overall_db": delta_psnr(uniform, roi, "psnr"),
    }


def run_roi(
    videos: str,
    out: str,
    model: str = "realtime",
    frames: int = 90,
    levels: list[int] | None = None,
    patterns: tuple[str, ...] = DEFAULT_CLIPS,
    settings: RoiSettings | None = None,
    keyframe_interval: int = VideoSettings.keyframe_interval,
) -> dict:
    """Run the benchmark; returns what it writes to ``OUT/roi.json``."""
    settings = settings or RoiSettings()
    codec = ImageCodec.load(model, "cpu", "auto")
    chosen = list(range(codec.levels)) if levels is None else levels
    for level in chosen:
        codec.check_level(level)
    video = VideoSettings(keyframe_interval=keyframe_interval)
    results: dict = {
        "model": model,
        "model_hash": codec.model_hash,
        "frames_per_clip": frames,
        "video_settings": asdict(video),
        "roi_settings": asdict(settings),
        "measuring_mask": "the encoder's region of interest: detected face boxes widened by "
        "the margins (the same pixels for uniform and ROI coding)",
        "clips": {},
        "skipped_clips": {},
    }
    clip_paths = find_clips(videos, patterns)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)  # before the work: a bad --out fails fast
    for clip in clip_paths:
        rgb_frames, fps = read_clip(clip, frames)
        height, width = rgb_frames[0].shape[:2]
        tracker = FaceRoi(codec.stride, settings)
        boxes = [tracker.update(rgb) for rgb in rgb_frames]
        if not any(len(b) for b in boxes):
            results["skipped_clips"][clip.name] = "no face detected"
            print(f"{clip.name}: no face detected, left out")
            continue
        masks = [pixel_mask(b, height, width, settings) for b in boxes]
        maps = [tracker.map_of(b, height, width) if len(b) else None for b in boxes]
        entry: dict = {
            "frames": len(rgb_frames),
            "fps": fps,
            "size": f"{width}x{height}",
            "face_frames": sum(1 for b in boxes if len(b)),
            "roi_area_share": statistics.fmean(float(m.mean()) for m in masks),
            "detections": tracker.detections,
        }
        for mode, chosen_maps in (("uniform", None), ("roi", maps)):
            entry[mode] = [
                code_stream(codec, rgb_frames, k, video, fps, masks, chosen_maps) for k in chosen
            ]
        entry["equal_bits"] = compare(entry["uniform"], entry["roi"])
        results["clips"][clip.name] = entry
        print_clip(clip.name, entry)
    clips = results["clips"].values()
    keys = ("delta_inside_db", "delta_outside_db", "delta_overall_db")
    results["mean_over_clips"] = {key: _mean([c["equal_bits"][key] for c in clips]) for key in keys}
    print(
        "mean over clips, ROI minus uniform at equal bits: "
        + ", ".join(f"{k} {_fmt(v)}" for k, v in results["mean_over_clips"].items())
    )
    (out_dir / "roi.json").write_text(json.dumps(results, indent=2))
    if results["clips"]:
        plot(results, out_dir / "roi.png")
    return results


def _fmt(value: float | None, spec: str = "+.2f") -> str:
    return "n/a" if value is None else format(value, spec)


def print_clip(name: str, entry: dict) -> None:
    print(
        f"{name} ({entry['size']}, {entry['frames']} frames, face in {entry['face_frames']}, "
        f"region {100 * entry['roi_area_share']:.0f}% of the frame)"
    )
    print("  mode    level   kbps   inside outside overall zeros")
    for mode in MODES:
        for p in entry[mode]:
            print(
                f"  {mode:7s} {p['level']:5d} {p['kbps']:8.1f}  {_fmt(p['psnr_inside'], '5.2f')}"
                f"  {_fmt(p['psnr_outside'], '5.2f')}   {_fmt(p['psnr'], '5.2f')}  "
                f"{100 * p['zero_share']:3.0f}%"
            )
    print("  ROI minus uniform at the uniform rates (dB): kbps: inside / outside / overall")
    for row in entry["equal_bits"]["at_uniform_rates"]:
        print(
            f"    {row['kbps']:8.1f}: {_fmt(row['delta_psnr_inside'])} / "
            f"{_fmt(row['delta_psnr_outside'])} / {_fmt(row['delta_psnr'])}"
        )
    e = entry["equal_bits"]
    print(
        f"  ROI minus uniform, mean over the common rate range: inside "
        f"{_fmt(e['delta_inside_db'])} dB, outside {_fmt(e['delta_outside_db'])} dB, "
        f"overall {_fmt(e['delta_overall_db'])} dB"
    )


def plot(results: dict, path: Path) -> None:
    def draw(axis, name: str, entry: dict) -> str:
        for mode, color in (("uniform", "tab:blue"), ("roi", "tab:orange")):
            points = sorted(entry[mode], key=lambda p: p["kbps"])
            kbps = [p["kbps"] for p in points]
            axis.plot(
                kbps,
                [p["psnr_inside"] for p in points],
                "o-",
                color=color,
                ms=3,
                label=f"{mode}: inside",
            )
            axis.plot(
                kbps,
                [p["psnr_outside"] for p in points],
                "s--",
                color=color,
                ms=3,
                label=f"{mode}: outside",
            )
        delta = entry["equal_bits"]["delta_inside_db"]
        return f"{name} (inside {_fmt(delta)} dB)"

    title = (
        f"{results['model']}: region of interest (faces) vs uniform coding, "
        f"{results['frames_per_clip']} frames per clip"
    )
    plot_clips(results["clips"], path, title, draw)
