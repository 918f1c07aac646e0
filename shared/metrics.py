"""Quality and rate measures."""

from __future__ import annotations

import math

import numpy as np

PSNR_CAP_DB = 100.0


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error of two equally shaped ``uint8`` images, in 8-bit units squared."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    diff = a.astype(np.float64) - b.astype(np.float64)
    return float(np.mean(diff * diff))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB over all channels with peak 255; identical images give ``PSNR_CAP_DB``."""
    error = mse(a, b)
    if error == 0:
        return PSNR_CAP_DB
    return min(PSNR_CAP_DB, 10 * math.log10(255.0**2 / error))


def bits_per_pixel(num_bytes: int, height: int, width: int) -> float:
    """Bits per pixel of ``num_bytes`` for an ``height x width`` image."""
    return 8.0 * num_bytes / (height * width)
