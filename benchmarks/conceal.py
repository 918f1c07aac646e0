"""Concealment of lost slices: inpainting vs copy-previous vs gray fill, on real clips.

Each clip's first ``frames`` frames go through the real ``VideoEncoder`` (key frame, then
predicted frames, ``slice_rows`` latent rows per slice) and wire format. For every frame
after the first, one slice chosen at random (or each slice with probability ``drop``) is
treated as lost: the decoder, in sync up to the previous frame, decodes the frame with that
slice missing (its band gets the decoder's latent prediction, i.e. the previous frame's
latents), and each method conceals the band as the receiver would, from that picture and
the previous fully decoded picture. Then the decoder is put back in sync by decoding the
same frame without loss, so errors never accumulate: every figure measures one frame's
concealment given a correct previous frame.

Methods: ``inpaint`` (the inpainting network, started from the previous picture shifted by
the motion measured around the band), ``inpaint_no_motion`` (the same network given the
unshifted previous picture), ``motion`` (that shifted previous picture alone), ``copy``
(the previous picture's pixels: what the receiver did before), ``latent_copy`` (the
synthesis of the decoder's latent prediction, left as decoded), ``gray`` (mid-gray). PSNR
is over the concealed bands only (all pixel rows of the lost slices, cropped to the frame),
pooled over the clip (from the mean squared error of all concealed pixels), against the
original frame and against the no-loss reconstruction; ``no_loss`` is the
reconstruction's own PSNR on those bands.

Writes ``OUT/conceal.json``, ``OUT/conceal.png`` (one frame: original | lost band in gray |
copy-previous | inpainting) and prints a table.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from receiver.conceal import Concealer, damaged_mask
from shared import wire
from shared.codec import ImageCodec
from shared.models.inpaint import Inpainter
from shared.video import VideoDecoder, VideoEncoder, VideoSettings

from .video import find_clips, read_clip

DEFAULT_CLIPS = ("akiyo_cif.mp4", "mother_daughter_cif.mp4", "foreman_cif.mp4", "webcam_asl_*.mkv")
METHODS = ("inpaint", "inpaint_no_motion", "motion", "copy", "latent_copy", "gray")


def _psnr(sse: float, count: int) -> float:
    if count == 0:
        return float("nan")
    mse = sse / count
    return round(10 * math.log10(255.0**2 / mse), 3) if mse > 0 else 100.0  # identical


def conceal_clip(
    codec: ImageCodec,
    inpainter: Inpainter,
    frames: list[np.ndarray],
    level: int,
    slice_rows: int,
    rng: np.random.Generator,
    drop: float | None,
    example_at: int | None = None,
) -> tuple[dict, list[np.ndarray] | None]:
    """Measure one clip; returns its entry and, at the first frame from ``example_at`` on
    that lost its middle slice (else the last frame), the pictures original | lost band
    gray | copy | inpaint."""
    encoder = VideoEncoder(codec, VideoSettings(slice_rows=slice_rows))
    decoder = VideoDecoder(codec)
    concealers = {
        "inpaint": Concealer("inpaint", inpainter),
        "inpaint_no_motion": Concealer("inpaint", inpainter, motion=False),
        "motion": Concealer("motion"),
        "copy": Concealer("copy"),
        "gray": Concealer("gray"),
    }
    sse = {f"{m}/{r}": 0.0 for m in (*METHODS, "no_loss") for r in ("original", "reconstruction")}
    pixels, bands, inpaint_ms, example, fallback = 0, 0, [], None, None
    previous = None
    for seq, rgb in enumerate(frames):
        coded = encoder.encode(rgb, level)
        message = wire.decode(
            wire.encode_frame(wire.FrameMessage.of("bench", seq, 0, codec.model_hash, coded))
        )
        count = len(coded.slice_bytes) or 1
        if drop is None:
            lost = [int(rng.integers(count))]
        else:
            lost = [int(i) for i in np.flatnonzero(rng.random(count) < drop)]
        if previous is None or count < 2 or not lost or len(lost) == count:
            previous = decoder.decode(message, seq).rgb  # nothing to measure on this frame
            continue
        state = (decoder.reference, decoder.synchronized)
        damaged = decoder.decode(message, seq, missing=frozenset(lost))
        decoder.reference, decoder.synchronized = state  # resynchronise: decode it whole
        full = decoder.decode(message, seq).rgb
        mask = damaged_mask(*rgb.shape[:2], lost, slice_rows, codec.stride)
        outputs = {"latent_copy": damaged.rgb, "no_loss": full}
        for name, concealer in concealers.items():
            started = time.perf_counter()
            outputs[name] = concealer(damaged.rgb, previous, lost, slice_rows, codec.stride)
            if name == "inpaint":
                inpaint_ms.append(1000 * (time.perf_counter() - started))
        truth = rgb[mask].astype(np.float64)
        clean = full[mask].astype(np.float64)
        for name, picture in outputs.items():
            values = picture[mask].astype(np.float64)
            sse[f"{name}/original"] += float(((values - truth) ** 2).sum())
            sse[f"{name}/reconstruction"] += float(((values - clean) ** 2).sum())
        pixels += truth.size
        bands += len(lost)
        if example is None and example_at is not None and seq >= example_at:
            pictures = [rgb, outputs["gray"], outputs["copy"], outputs["inpaint"]]
            fallback = pictures  # the latest frame, if none loses its middle slice
            if lost == [count // 2]:  # a band with picture above and below
                example = pictures
        previous = full
    # Runs of lost bands the inpaint method copied because their surroundings were still
    # (one lost slice per frame by default, so runs = bands there).
    entry = {
        "bands": bands,
        "inpaint_copied_runs": concealers["inpaint"].copied,
        "inpaint_ms_median": None,
    }
    if inpaint_ms:
        entry["inpaint_ms_median"] = round(statistics.median(inpaint_ms), 2)
    for reference in ("original", "reconstruction"):
        names = (*METHODS, "no_loss") if reference == "original" else METHODS
        entry[f"psnr_vs_{reference}"] = {
            name: _psnr(sse[f"{name}/{reference}"], pixels) for name in names
        }
    return entry, example or fallback


def label(image: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((22, image.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, image], axis=0)


def run_conceal(
    videos: str,
    out: str,
    model: str = "realtime",
    frames: int = 100,
    level: int | None = None,
    inpaint_model: str = "inpaint",
    patterns: tuple[str, ...] = DEFAULT_CLIPS,
    slice_rows: int = VideoSettings.slice_rows,
    drop: float | None = None,
    seed: int = 0,
) -> dict:
    clips = find_clips(videos, patterns)
    codec = ImageCodec.load(model, "cpu")
    level = codec.levels // 2 if level is None else level
    codec.check_level(level)
    inpainter = Inpainter.load(inpaint_model)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = {
        "model": model,
        "model_hash": codec.model_hash,
        "inpaint_model": inpaint_model,
        "inpaint_hash": inpainter.content_sha256[:16],
        "level": level,
        "slice_rows": slice_rows,
        "frames_per_clip": frames,
        "loss": "one slice per frame" if drop is None else f"each slice with p={drop}",
        "clips": {},
    }
    example_clip = next((c for c in clips if "foreman" in c.name), clips[0])
    example = None
    for path in clips:
        pictures, _ = read_clip(path, frames)
        rng = np.random.default_rng(seed)
        at = len(pictures) // 2 if path == example_clip else None
        entry, shown = conceal_clip(codec, inpainter, pictures, level, slice_rows, rng, drop, at)
        height, width = pictures[0].shape[:2]
        entry = {"frames": len(pictures), "size": f"{width}x{height}"} | entry
        results["clips"][path.name] = entry
        if shown is not None:
            example = (path.name, shown)
        print_clip(path.name, entry)
    for reference in ("original", "reconstruction"):
        key = f"psnr_vs_{reference}"
        results[f"mean_{key}"] = {
            name: round(statistics.fmean(e[key][name] for e in results["clips"].values()), 3)
            for name in METHODS
        }
    (out_dir / "conceal.json").write_text(json.dumps(results, indent=2))
    if example is not None:
        name, (original, gray, copy, inpainted) = example
        row = [
            label(original, f"{name}: original"),
            label(gray, "lost slice (gray)"),
            label(copy, "copy-previous"),
            label(inpainted, "inpainting"),
        ]
        picture = np.concatenate(row, axis=1)
        cv2.imwrite(str(out_dir / "conceal.png"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    print_summary(results)
    return results


def print_clip(name: str, entry: dict) -> None:
    o, r = entry["psnr_vs_original"], entry["psnr_vs_reconstruction"]
    print(
        f"{name} ({entry['size']}, {entry['bands']} bands): vs original "
        + "  ".join(f"{m} {o[m]:.2f}" for m in METHODS)
        + f"  (no loss {o['no_loss']:.2f});  vs reconstruction "
        + "  ".join(f"{m} {r[m]:.2f}" for m in METHODS),
        flush=True,
    )


def print_summary(results: dict) -> None:
    print("\nconcealed-band PSNR (dB) vs original | vs no-loss reconstruction")
    print("| clip | " + " | ".join(METHODS) + " | no loss |")
    print("|---|" + "---|" * (len(METHODS) + 1))
    rows = [
        (n, e["psnr_vs_original"], e["psnr_vs_reconstruction"]) for n, e in results["clips"].items()
    ]
    rows.append(("mean", results["mean_psnr_vs_original"], results["mean_psnr_vs_reconstruction"]))
    for name, o, r in rows:
        cells = [f"{o[m]:.2f} / {r[m]:.2f}" for m in METHODS]
        no_loss = f"{o['no_loss']:.2f}" if "no_loss" in o else "-"
        print(f"| {name} | " + " | ".join(cells) + f" | {no_loss} |")
