"""Rate-control accuracy on real clips: the sender's controller and encoder, offline.

Each clip is looped (forwards, then backwards, so the loop point is not a scene cut) for
``seconds`` of stream time at its own frame rate and coded exactly as the sender codes it:
``RateController.choose`` picks each frame's level, ``VideoEncoder`` codes it (key frames on
the sender's default interval), and the controller is told the frame's whole wire-message
size. No network and no pacing: the timeline is ``frame index / fps``, so the result does not
depend on this machine's speed. Reported per clip and target: the bitrate of every 5-second
window starting after ``settle`` seconds (in 0.5 s steps), its worst deviation from the
target, how often the level changes by more than one step (oscillation), and the frames the
controller dropped because even the lowest level did not fit, and the share of frames at the
top level (a target above what the top level spends cannot be met by any controller).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np

from sender.rate import RateController
from shared import wire
from shared.codec import ImageCodec
from shared.video import VideoEncoder

from .video import find_clips, read_clip

DEFAULT_CLIPS = ("akiyo_cif.mp4", "mother_daughter_cif.mp4", "webcam_asl_*.mkv")
WINDOW_S = 5.0
STEP_S = 0.5


def ping_pong(frames: list[np.ndarray], count: int) -> list[np.ndarray]:
    """``count`` frames: the clip forwards, backwards, forwards, ..."""
    cycle = frames + frames[-2:0:-1] if len(frames) > 2 else frames
    return [cycle[i % len(cycle)] for i in range(count)]


def run_clip(
    codec: ImageCodec, frames: list[np.ndarray], fps: float, target_kbps: float, seconds: float
) -> list[tuple[float, int, int, bool]]:
    """``(time s, level, wire bits, key)`` per frame (level ``-1``: dropped)."""
    encoder = VideoEncoder(codec)
    controller = RateController(target_kbps, fps, codec.levels)
    timeline = []
    for seq, rgb in enumerate(ping_pong(frames, round(seconds * fps))):
        key = encoder.next_is_key()
        level = controller.choose(key)
        if level is None:
            controller.skip()
            timeline.append((seq / fps, -1, 0, False))  # dropped, as the sender drops it
            continue
        coded = encoder.encode(rgb, level)
        message = wire.FrameMessage.of("rate", seq, 0, codec.model_hash, coded)
        bits = 8 * len(wire.encode_frame(message)[1])
        controller.update(level, bits, coded.kind == "key")
        timeline.append((seq / fps, level, bits, coded.kind == "key"))
    return timeline


def window_kbps(timeline, settle_s: float, end_s: float) -> list[float]:
    """Bitrate of each ``WINDOW_S`` window starting at ``settle_s``, every ``STEP_S``."""
    rates, start = [], settle_s
    while start + WINDOW_S <= end_s + 1e-9:
        bits = sum(b for t, _, b, _ in timeline if start <= t < start + WINDOW_S)
        rates.append(bits / WINDOW_S / 1000)
        start += STEP_S
    return rates


def run_rate(
    videos: str,
    out: str,
    model: str,
    targets: list[float],
    seconds: float = 20.0,
    settle_s: float = 2.0,
    patterns: tuple[str, ...] = DEFAULT_CLIPS,
    max_frames: int = 300,
) -> dict:
    codec = ImageCodec.load(model, "cpu", "auto")
    results: dict = {
        "model": model,
        "seconds": seconds,
        "settle_s": settle_s,
        "window_s": WINDOW_S,
        "clips": {},
    }
    clips = find_clips(videos, patterns)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)  # before the work: a bad --out fails fast
    for clip in clips:
        frames, fps = read_clip(clip, max_frames)
        entry = {}
        for target in targets:
            timeline = run_clip(codec, frames, fps, target, seconds)
            rates = window_kbps(timeline, settle_s, seconds)
            levels = [level for _, level, _, _ in timeline if level >= 0]
            deviations = [100 * (r - target) / target for r in rates]
            entry[str(target)] = {
                "windows": len(rates),
                "window_kbps": rates,
                "worst_deviation_pct": max(deviations, key=abs) if deviations else None,
                "median_kbps": statistics.median(rates) if rates else None,
                "key_frames": sum(key for *_, key in timeline),
                "dropped_frames": sum(level < 0 for _, level, _, _ in timeline),
                "level_jumps_over_1": sum(
                    abs(a - b) > 1 for a, b in zip(levels, levels[1:], strict=False)
                ),
                "levels_used": sorted(set(levels)),
                # The target may lie outside what the model's levels can spend on this clip.
                "share_at_top_level": sum(v == codec.levels - 1 for v in levels) / len(levels),
                "share_at_level_0": sum(v == 0 for v in levels) / len(levels),
            }
            row = entry[str(target)]
            print(
                f"{clip.name:28s} target {target:7.1f} kbps: windows {row['windows']:3d}, "
                f"median {row['median_kbps']:7.1f}, worst {row['worst_deviation_pct']:+5.1f}%, "
                f"jumps>1 {row['level_jumps_over_1']}, levels {row['levels_used']}",
                flush=True,
            )
        results["clips"][clip.name] = entry
    worst = [
        abs(row["worst_deviation_pct"])
        for entry in results["clips"].values()
        for row in entry.values()
        if row["worst_deviation_pct"] is not None
    ]
    results["worst_deviation_pct_all"] = max(worst) if worst else None
    (out_dir / "rate.json").write_text(json.dumps(results, indent=2))
    return results
