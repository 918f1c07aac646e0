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


def run_example(image: str, out: str, text: str, model: str = "inpaint") -> dict:
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
