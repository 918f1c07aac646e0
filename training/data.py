"""Image folders as training batches: random crops and flips of images held in memory."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp"}


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted by path."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"image folder {folder} is a file, not a folder")
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images in {folder}")
    return files


def read_rgb(path: Path) -> np.ndarray:
    """``(H, W, 3)`` ``uint8`` RGB image."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot decode image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def split_train_validation(files: list[Path], every: int = 20) -> tuple[list[Path], list[Path]]:
    """Every ``every``-th file (by sorted path) is held out for validation."""
    validation = files[::every]
    held = set(validation)
    return [f for f in files if f not in held], validation


class CropSampler:
    """Draws batches ``(B, 3, crop, crop)`` float32 in ``[0, 1]`` from in-memory images."""

    def __init__(self, files: list[Path], crop: int, seed: int) -> None:
        self.images = [read_rgb(f) for f in files]
        self.images = [im for im in self.images if min(im.shape[:2]) >= crop]
        if not self.images:
            raise ValueError(f"no image is at least {crop}x{crop} pixels")
        self.crop = crop
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> torch.Tensor:
        crops = []
        for _ in range(size):
            image = self.images[self.rng.integers(len(self.images))]
            top = self.rng.integers(image.shape[0] - self.crop + 1)
            left = self.rng.integers(image.shape[1] - self.crop + 1)
            patch = image[top : top + self.crop, left : left + self.crop]
            if self.rng.random() < 0.5:
                patch = patch[:, ::-1]
            if self.rng.random() < 0.5:
                patch = patch[::-1]
            crops.append(np.ascontiguousarray(patch))
        array = np.stack(crops).astype(np.float32) / 255.0
        return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


def center_crops(files: list[Path], size: int) -> list[torch.Tensor]:
    """Centre crops ``(1, 3, size, size)`` (or the whole image when smaller, cut to 16)."""
    out = []
    for f in files:
        image = read_rgb(f)
        h, w = image.shape[:2]
        ch, cw = min(size, h - h % 16), min(size, w - w % 16)
        top, left = (h - ch) // 2, (w - cw) // 2
        patch = image[top : top + ch, left : left + cw].astype(np.float32) / 255.0
        out.append(torch.from_numpy(patch).permute(2, 0, 1).unsqueeze(0).contiguous())
    return out
