"""The offline inpainting example: overlay a caption on an image, take its mask (the text
grown by 2 pixels), remove it with ``python -m receiver.inpaint`` and compare the filled
pixels with the image before the caption (PSNR over the mask), beside OpenCV's classical
inpainting (Telea) and a gray fill.

Writes ``OUT/captioned.png``, ``OUT/mask.png``, ``OUT/restored.png``,
``OUT/inpaint_example.png`` (captioned | mask | restored) and ``OUT/inpaint_example.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from receiver.inpaint import inpaint_file, read_image


def caption_mask(height: int, width: int, text: str) -> np.ndarray:
    """``uint8`` mask (255 = text) of ``text`` in large letters across the image."""
    mask = np.zeros((height, width), np.uint8)
    scale = width / 320
    for i, line in enumerate(text.split("|")):
        y = int(height * (0.3 + 0.3 * i))
        cv2.putText(
            mask, line, (int(0.05 * width), y), cv2.FONT_HERSHEY_DUPLEX, scale, 255, 3, cv2.LINE_AA
        )
    mask = np.where(mask > 64, 255, 0).astype(np.uint8)
    return cv2.dilate(mask, np.ones((5, 5), np.uint8))


def hole_psnr(a: np.ndarray, b: np.ndarray, hole: np.ndarray) -> float:
    mse = float(((a[hole].astype(np.float64) - b[hole]) ** 2).mean())
    return round(10 * math.log10(255.0**2 / max(mse, 1e-12)), 2)


def run_example(image: str, out: str, text: str, model: str | None = None) -> dict:
    """``model``: an inpainting network's zoo name or file; ``None``: the offline default
    (``receiver.inpaint.default_model``)."""
    bgr = read_image(image, "image")
    mask = caption_mask(*bgr.shape[:2], text)
    hole = mask > 127
    if not hole.any():  # no hole, no PSNR over it
        raise ValueError(
            f"the caption --text {text!r} covers no pixel of the {bgr.shape[1]}x{bgr.shape[0]} "
            "image: give visible text and a larger --image"
        )
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    captioned = bgr.copy()
    captioned[hole] = (255, 255, 255)
    cv2.imwrite(str(out_dir / "captioned.png"), captioned)
    cv2.imwrite(str(out_dir / "mask.png"), mask)
    summary = inpaint_file(
        str(out_dir / "captioned.png"),
        str(out_dir / "mask.png"),
        str(out_dir / "restored.png"),
        model=model,
    )
    restored = cv2.imread(str(out_dir / "restored.png"))
    telea = cv2.inpaint(captioned, mask, 5, cv2.INPAINT_TELEA)
    gray = captioned.copy()
    gray[hole] = 128
    result = {
        "image": Path(image).name,
        "size": f"{bgr.shape[1]}x{bgr.shape[0]}",
        "hole_pixels": summary["hole_pixels"],
        "inpaint_ms": summary["ms"],
        "hole_psnr_db": {
            "inpaint": hole_psnr(restored, bgr, hole),
            "opencv_telea": hole_psnr(telea, bgr, hole),
            "gray": hole_psnr(gray, bgr, hole),
        },
    }
    panel = np.concatenate([captioned, cv2.cvtColor(mask, cv2.COLOR_GRAY2BGR), restored], axis=1)
    cv2.imwrite(str(out_dir / "inpaint_example.png"), panel)
    (out_dir / "inpaint_example.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return result


def stroke_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """``uint8`` mask (255 = hole) of six free-form strokes, 5-15 pixels thick, as
    scratches or hand-drawn holes."""
    mask = np.zeros((height, width), np.uint8)
    for _ in range(6):
        start = np.array([rng.uniform(0, width), rng.uniform(0, height)])
        points = start + np.cumsum(rng.normal(0, 0.04 * max(height, width), (6, 2)), axis=0)
        cv2.polylines(mask, [points.astype(np.int32)], False, 255, int(rng.integers(5, 16)))
    return mask


def band_mask(height: int, width: int, rng: np.random.Generator, rows: int = 128) -> np.ndarray:
    """``uint8`` mask (255 = hole) of one lost slice: ``rows`` whole pixel rows (a stream's
    slice of 8 latent rows at stride 16; a third of the height at most) at a random
    multiple of 16, never the first or last slice, so rows above and below remain."""
    rows = min(rows, height // 3 // 16 * 16)
    mask = np.zeros((height, width), np.uint8)
    slots = (height - rows) // 16
    if rows <= 0 or slots < 2:
        return mask
    top = 16 * int(rng.integers(1, slots))
    mask[top : top + rows] = 255
    return mask


def smooth_filled(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The push-pull fill the network starts from (``shared.models.inpaint.smooth_fill``)."""
    import torch

    from shared.models.inpaint import smooth_fill

    image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    known = torch.from_numpy((~hole).astype(np.float32))[None, None]
    filled = smooth_fill(image, known)[0].permute(1, 2, 0).numpy()
    return (filled * 255 + 0.5).clip(0, 255).astype(np.uint8)


CLASSIC = ("smooth_fill", "opencv_telea", "opencv_ns", "gray")
NETWORKS = ("inpaint-image", "inpaint")


def network_key(name_or_path: str) -> str:
    """A zoo name as it is, a model file by its stem."""
    from shared.registry import AUXILIARY

    return name_or_path if name_or_path in AUXILIARY else Path(name_or_path).stem


def run_inpaint_set(
    images: str,
    out: str,
    models: tuple[str, ...] = NETWORKS,
    text: str = "latentcast|inpainting",
    limit: int | None = None,
) -> dict:
    """Every image of the folder ``images`` with three holes in turn, the caption of
    ``run_example``, random strokes and a lost slice's band as the receiver conceals it in a
    stream's first frame (both seeded per image): PSNR (dB) over the hole against
    the image for each network of ``models`` (no previous frame), the smooth fill the
    networks start from, OpenCV's Telea and Navier-Stokes inpainting (radius 5) and gray.
    Writes ``OUT/inpaint_set.json`` (per image, and mean and median per mask)."""
    from shared.models.inpaint import Inpainter

    files = sorted(p for p in Path(images).iterdir() if p.suffix.lower() in (".png", ".jpg"))
    if limit:
        files = files[:limit]
    if not files:
        raise ValueError(f"no .png or .jpg images in {images}")
    networks = {network_key(name): Inpainter.load(name) for name in models}
    methods = (*networks, *CLASSIC)
    rows = []
    for index, path in enumerate(files):
        bgr = read_image(str(path), "image")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        height, width = rgb.shape[:2]
        masks = {
            "caption": caption_mask(height, width, text),
            "strokes": stroke_mask(height, width, np.random.default_rng(index)),
            "band": band_mask(height, width, np.random.default_rng(10_000 + index)),
        }
        for kind, mask in masks.items():
            hole = mask > 127
            if not hole.any():
                continue
            damaged = rgb.copy()
            damaged[hole] = 255
            damaged_bgr = cv2.cvtColor(damaged, cv2.COLOR_RGB2BGR)
            filled = {key: network(damaged, hole) for key, network in networks.items()}
            filled |= {
                "smooth_fill": smooth_filled(damaged, hole),
                "opencv_telea": cv2.cvtColor(
                    cv2.inpaint(damaged_bgr, mask, 5, cv2.INPAINT_TELEA), cv2.COLOR_BGR2RGB
                ),
                "opencv_ns": cv2.cvtColor(
                    cv2.inpaint(damaged_bgr, mask, 5, cv2.INPAINT_NS), cv2.COLOR_BGR2RGB
                ),
                "gray": np.where(hole[..., None], np.uint8(128), damaged),
            }
            row = {"image": path.name, "mask": kind, "hole_share": round(float(hole.mean()), 4)}
            row.update({name: hole_psnr(filled[name], rgb, hole) for name in methods})
            rows.append(row)
    summary = {}
    for kind in ("caption", "strokes", "band"):
        chosen = [row for row in rows if row["mask"] == kind]
        if chosen:
            summary[kind] = {
                name: {
                    "mean": round(float(np.mean([row[name] for row in chosen])), 2),
                    "median": round(float(np.median([row[name] for row in chosen])), 2),
                    "beats_smooth_fill": sum(row[name] > row["smooth_fill"] for row in chosen),
                    "beats_telea": sum(row[name] > row["opencv_telea"] for row in chosen),
                }
                for name in methods
            }
            summary[kind]["images"] = len(chosen)
    result = {"images": images, "models": list(models), "summary": summary, "per_image": rows}
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "inpaint_set.json").write_text(json.dumps(result, indent=2))
    print("mask     " + "".join(f"{name:>15}" for name in methods))
    for kind, values in summary.items():
        print(f"{kind:<9}" + "".join(f"{values[name]['mean']:>15.2f}" for name in methods))
    return result
