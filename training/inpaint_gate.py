"""Calibration of the concealment gate: when to copy the previous frame instead of inpainting.

The receiver conceals a lost band with the inpainting network unless the rows around the
band did not change since the previous frame (``shared.models.inpaint.context_change`` at
most ``STILL_CHANGE``); then it copies the previous frame. This measures, on band holes in
held-out *training* crops (the every-20th files the networks never trained on; never video
clips, Kodak or holdout) with a synthesised previous frame (the inpainting model's stage-2
motion: small shifts, a share of static cameras) and both pictures passed through the
codec as a receiver has them, the hole's squared error of each method against the
original, and the change of the rows around the hole. It reports the threshold that
minimises the total error and the errors per change bin, and writes ``gate.json``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from shared.models.inpaint import GATE_ROWS, Inpainter, context_change

from .checks import require_at_least, require_output_folder
from .data import list_images, split_train_validation
from .inpaint import MIN_CROP, InpaintSampler, load_images, random_mask


@dataclass
class GateConfig:
    data: str
    out: str
    samples: int = 600
    crop: int = 192
    codec: str = "realtime"
    inpaint_model: str = "inpaint"
    shift_px: float = 1.5  # the inpainting model's stage-2 motion
    still: float = 0.35
    relight: float = 0.03
    seed: int = 2024
    threads: int = 1

    def __post_init__(self) -> None:
        require_output_folder(self.out)
        require_at_least(self, 1, "samples", "threads")
        require_at_least(self, MIN_CROP, "crop")
        if not 0 <= self.still <= 1:
            raise ValueError(f"--still must be in 0..1, not {self.still}")


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    """``(1, 3, H, W)`` in [0, 1] -> ``(H, W, 3)`` ``uint8``."""
    return (image[0].permute(1, 2, 0).numpy() * 255.0 + 0.5).clip(0, 255).astype(np.uint8)


def _sse(a: np.ndarray, b: np.ndarray, hole: np.ndarray) -> float:
    diff = a[hole].astype(np.float64) - b[hole].astype(np.float64)
    return float((diff**2).sum())


def _psnr(sse: float, count: int) -> float:
    return 10 * math.log10(255.0**2 / max(sse / max(count, 1), 1e-12))


def calibrate(config: GateConfig) -> dict:
    """Measure the samples and choose the threshold; returns (and writes) the report."""
    from shared.codec import ImageCodec

    torch.set_num_threads(config.threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)  # first: a folder we cannot write fails fast
    codec = ImageCodec.load(config.codec, "cpu", "fp32").model
    inpainter = Inpainter.load(config.inpaint_model)
    _, held_out = split_train_validation(list_images(config.data))
    images = load_images(held_out, config.crop)
    if not images:
        raise ValueError(f"no held-out image of at least {config.crop} pixels in {config.data}")
    motion = (config.shift_px, config.still, config.relight)
    sampler = InpaintSampler(images, config.crop, 0.0, config.seed, motion, codec, 1.0)
    rows = []
    for _ in range(config.samples):
        current, previous, _ = sampler.sample()
        hole = random_mask(sampler.rng, config.crop, "band").astype(bool)
        target = torch.from_numpy(current).permute(2, 0, 1)[None]
        before = torch.from_numpy(previous).permute(2, 0, 1)[None]
        coded = sampler.reconstruct(torch.cat([target, before]))
        seen, prior = _to_uint8(coded[:1]), _to_uint8(coded[1:])
        original = _to_uint8(target)
        change = context_change(seen, prior, hole)
        if change is None:  # a hole over the whole crop: nothing to decide on
            continue
        filled = inpainter(seen, hole, prior)
        rows.append(
            {
                "change": change,
                "pixels": int(hole.sum()) * 3,
                "sse_inpaint": _sse(filled, original, hole),
                "sse_copy": _sse(prior, original, hole),
            }
        )
    report = summarise(rows)
    report["config"] = asdict(config)
    report["gate_rows"] = GATE_ROWS
    (out / "gate.json").write_text(json.dumps(report, indent=2))
    return report


def summarise(rows: list[dict]) -> dict:
    """The threshold ``t`` minimising the total hole error of "copy where change <= t, else
    inpaint" (candidates: 0 and every measured change), the PSNR of each policy over all
    holes, and per change bin the PSNR of both methods."""
    if not rows:
        raise ValueError("no samples to calibrate on")
    changes = np.array([r["change"] for r in rows])
    inpaint = np.array([r["sse_inpaint"] for r in rows])
    copy = np.array([r["sse_copy"] for r in rows])
    pixels = int(sum(r["pixels"] for r in rows))
    order = np.argsort(changes, kind="stable")
    # Copying the k smallest-change samples: error = copy[:k].sum() + inpaint[k:].sum().
    cumulative = np.concatenate([[0.0], np.cumsum(copy[order] - inpaint[order])])
    best = int(np.argmin(cumulative))
    threshold = 0.0 if best == 0 else float(changes[order][best - 1])
    gated = inpaint.sum() + cumulative[best]
    edges = [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, math.inf]
    bins = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        chosen = (changes >= low) & (changes < high)
        if not chosen.any():
            continue
        count = int(sum(r["pixels"] for r, c in zip(rows, chosen, strict=True) if c))
        bins.append(
            {
                "change": f"[{low}, {high})",
                "samples": int(chosen.sum()),
                "psnr_inpaint": round(_psnr(float(inpaint[chosen].sum()), count), 3),
                "psnr_copy": round(_psnr(float(copy[chosen].sum()), count), 3),
            }
        )
    return {
        "samples": len(rows),
        "threshold": threshold,
        "copied_share": round(best / len(rows), 3),
        "psnr": {
            "inpaint": round(_psnr(float(inpaint.sum()), pixels), 3),
            "copy": round(_psnr(float(copy.sum()), pixels), 3),
            "gated": round(_psnr(float(gated), pixels), 3),
        },
        "bins": bins,
    }


def print_report(report: dict) -> None:
    psnr = report["psnr"]
    print(
        f"{report['samples']} band holes: inpaint {psnr['inpaint']:.2f} dB, copy "
        f"{psnr['copy']:.2f} dB, gated {psnr['gated']:.2f} dB at threshold "
        f"{report['threshold']:.3f} (copies {100 * report['copied_share']:.1f}%)"
    )
    print("| change of the rows around (8-bit) | samples | inpaint dB | copy dB |")
    print("|---|---|---|---|")
    for row in report["bins"]:
        print(
            f"| {row['change']} | {row['samples']} | {row['psnr_inpaint']:.2f} "
            f"| {row['psnr_copy']:.2f} |"
        )
