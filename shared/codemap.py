"""Pictures of the code: what the integer latents of a frame look like.

A frame's latents are ``(C, h, w)`` integers, one position per ``stride x stride`` pixels.
``code_image`` draws them at frame size: per position, the L1 norm over channels (how many
quantization steps the position spends) through a colour map, or the first three principal
components of the channels as RGB; positions whose every channel is zero
are black, so the sparse (free) parts of the code show as dark blocks. As in the course's
notebook, this is the view beside the original and the reconstruction.
"""

from __future__ import annotations

import cv2
import numpy as np

CODE_MODES = ("l1", "pca")


def zero_share(latents: np.ndarray) -> float:
    """Share of the latent symbols that are zero."""
    return float(np.count_nonzero(latents == 0)) / max(1, latents.size)


def _upsample(values: np.ndarray, stride: int, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour ``(h, w, ...)`` -> ``(height, width, ...)`` (cells of ``stride``)."""
    big = np.repeat(np.repeat(values, stride, axis=0), stride, axis=1)
    rows, cols = big.shape[:2]
    if rows < height or cols < width:  # latents of a smaller stride than asked: stretch
        return cv2.resize(big, (width, height), interpolation=cv2.INTER_NEAREST)
    return big[:height, :width]


def code_image(
    latents: np.ndarray, height: int, width: int, stride: int = 16, mode: str = "l1"
) -> np.ndarray:
    """An ``(height, width, 3)`` ``uint8`` RGB picture of ``latents`` ``(C, h, w)``.

    ``mode="l1"``: per-position L1 norm, scaled to the frame's 99th percentile (clipped),
    through the inferno colour map (non-zero positions at least dark purple).
    ``mode="pca"``: the first three principal components of the channels at the non-zero
    positions, each stretched to its 1st-99th percentile.
    Zero positions (every channel 0) are black in both.
    """
    if mode not in CODE_MODES:
        raise ValueError(f"mode must be one of {CODE_MODES}, not {mode!r}")
    if latents.ndim != 3:
        raise ValueError(f"latents must be (C, h, w), not {latents.shape}")
    values = latents.astype(np.float64)
    active = np.any(latents != 0, axis=0)  # (h, w)
    if mode == "l1":
        norm = np.abs(values).sum(axis=0)
        top = np.percentile(norm[active], 99) if active.any() else 0.0
        level = np.zeros_like(norm) if top == 0 else np.clip(norm / top, 0.0, 1.0)
        gray = np.round(30 + 225 * level).astype(np.uint8)
        rgb = cv2.applyColorMap(gray, cv2.COLORMAP_INFERNO)[:, :, ::-1]
    else:
        channels, rows, cols = values.shape
        rgb = np.zeros((rows, cols, 3), dtype=np.uint8)
        if active.any():
            samples = values[:, active].T  # (n, C)
            centred = samples - samples.mean(axis=0)
            components = min(3, channels, max(1, len(samples)))
            if len(samples) > 1:
                _, _, vt = np.linalg.svd(centred, full_matrices=False)
                projected = centred @ vt[:components].T
            else:
                projected = centred[:, :components]
            low = np.percentile(projected, 1, axis=0)
            high = np.percentile(projected, 99, axis=0)
            scaled = np.clip((projected - low) / np.maximum(high - low, 1e-9), 0, 1)
            colours = np.zeros((len(samples), 3))
            colours[:, :components] = scaled
            rgb[active] = np.round(40 + 215 * colours).astype(np.uint8)  # never black
    rgb[~active] = 0
    return np.ascontiguousarray(_upsample(rgb, stride, height, width))
