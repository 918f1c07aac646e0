"""Estimating how noisy a frame is, so a sender can pick the denoising model made for it.

``estimate_noise_sigma`` measures the standard deviation of additive white noise in an
8-bit RGB frame, in units of the full range (noise of ``sigma * 255`` levels reads as
``sigma``), the unit of ``python -m training train --noise-sigma``. Per channel, the frame
is filtered with the second-difference mask ``[1, -2, 1]^T [1, -2, 1]``, which cancels
flat areas and linear ramps (Immerkaer, "Fast noise variance estimation", 1996); white
noise of deviation ``s`` comes out with deviation ``6 s``, since the mask's squared weights
sum to 36. The median of the response's absolute value is ``0.6745 * 6 s`` for Gaussian
noise; the median, unlike the mean, is barely moved by the edges and texture that also
pass the mask. The estimate is the median over the three channels.

It reads high on clean, textured images (about 0.01, up to 0.03 of the range) and low where
clipping at 0 or 255 removes part of the noise; camera noise, which demosaicing and
compression smooth, reads lower than its visible strength.

``NoiseWatch`` turns per-frame estimates into a stable choice between a model for mild and
a model for strong noise, switching only when the running median crosses a threshold by a
margin, so a stream does not flip between models (each switch costs a key frame).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

_SECOND_DIFFERENCE = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
_MAX_RESPONSE = 16 * 255  # |mask response| of a uint8 frame, at most; fits int16
#: Median of |N(0, 1)|: a Gaussian's median absolute value over its deviation.
_GAUSSIAN_MEDIAN_ABS = 0.6745


def estimate_noise_sigma(rgb: np.ndarray) -> float:
    """The noise deviation of ``rgb`` (H x W x 3 uint8, H and W at least 3) as a fraction of
    the 8-bit range: about 0.1 for Gaussian noise of 25.5 levels (see the module)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 uint8 frame, got {rgb.dtype} {rgb.shape}")
    if min(rgb.shape[:2]) < 3:
        raise ValueError(f"a frame of at least 3 x 3 pixels is needed, got {rgb.shape[:2]}")
    # Integer weights on uint8 input: the int16 response is exact, and its median is found by
    # counting (3 ms at 640x480 instead of 13 ms for np.median's sort).
    response = cv2.filter2D(rgb, cv2.CV_16S, _SECOND_DIFFERENCE)[1:-1, 1:-1]
    magnitudes = np.abs(response).reshape(-1, 3)
    per_channel = [_lower_median(magnitudes[:, channel]) for channel in range(3)]
    return float(np.median(per_channel)) / (_GAUSSIAN_MEDIAN_ABS * 6.0 * 255.0)


def _lower_median(values: np.ndarray) -> int:
    """The lower median of non-negative integers at most ``_MAX_RESPONSE``."""
    cumulative = np.cumsum(np.bincount(values, minlength=_MAX_RESPONSE + 1))
    return int(np.searchsorted(cumulative, (cumulative[-1] + 1) // 2))


@dataclass(frozen=True)
class NoiseSettings:
    """When a sender moves between its mild-noise and strong-noise models.

    ``threshold`` (a noise deviation, fraction of the range) lies between what the
    estimate reads at sigma 0.05 (at most 0.061) and at sigma 0.1 (at least 0.079) on the
    training images; ``margin`` is the hysteresis on each side. Estimates are taken every
    ``every`` frames and the median of the last ``window`` decides."""

    threshold: float = 0.07
    margin: float = 0.005
    every: int = 10
    window: int = 5


class NoiseWatch:
    """Which of two models the frames' noise calls for: ``strong`` is ``False`` (mild-noise
    model) until the median of the recent estimates reaches ``threshold + margin``, then
    ``True`` until it falls below ``threshold - margin``. The first estimate decides at
    once (a stream starts with the right model)."""

    def __init__(self, settings: NoiseSettings = NoiseSettings()) -> None:
        self.settings = settings
        self.estimates: deque[float] = deque(maxlen=settings.window)
        self.strong = False
        self.frames = 0

    @property
    def sigma(self) -> float | None:
        """The median of the recent estimates; ``None`` before the first."""
        return float(np.median(self.estimates)) if self.estimates else None

    def observe(self, rgb: np.ndarray) -> bool:
        """Count a frame (estimating its noise every ``every`` frames, the first included)
        and return whether the strong-noise model is called for now."""
        settings = self.settings
        if self.frames % settings.every == 0:
            self.estimates.append(estimate_noise_sigma(rgb))
            sigma = self.sigma
            if len(self.estimates) == 1:
                self.strong = sigma >= settings.threshold
            elif self.strong and sigma < settings.threshold - settings.margin:
                self.strong = False
            elif not self.strong and sigma >= settings.threshold + settings.margin:
                self.strong = True
        self.frames += 1
        return self.strong
