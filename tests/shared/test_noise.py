"""Noise estimation (``shared.noise``): the estimate's scale, and the model choice's
hysteresis."""

import numpy as np
import pytest

from benchmarks.denoise import add_noise
from shared.noise import NoiseSettings, NoiseWatch, estimate_noise_sigma


def smooth_image(height: int = 240, width: int = 320) -> np.ndarray:
    """Ramps and a slow wave in each channel, away from 0 and 255 (no clipping)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = [60 + 0.2 * x + 0.1 * y + 20 * np.sin(x / 40 + c) for c in range(3)]
    return np.stack(channels, axis=2)


def noisy(sigma: float, seed: int = 0) -> np.ndarray:
    """``smooth_image`` with Gaussian noise of ``sigma * 255`` levels, as a camera's uint8
    (the denoising benchmark's noise)."""
    return add_noise(smooth_image(), sigma, seed)


@pytest.mark.parametrize("sigma", [0.02, 0.05, 0.1, 0.15])
def test_the_estimate_reads_the_noise_deviation_as_a_fraction_of_the_range(sigma):
    assert estimate_noise_sigma(noisy(sigma)) == pytest.approx(sigma, rel=0.05)


def test_a_clean_smooth_frame_reads_almost_no_noise():
    assert estimate_noise_sigma(noisy(0.0)) < 0.003


def test_the_estimate_ignores_edges_and_channel_order():
    frame = noisy(0.05)
    frame[:, ::16] = 250  # sharp lines every 16 columns: a sixteenth of the pixels
    assert estimate_noise_sigma(frame) == pytest.approx(0.05, rel=0.15)
    assert estimate_noise_sigma(frame[:, :, ::-1]) == estimate_noise_sigma(frame)


@pytest.mark.parametrize(
    "frame",
    [np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.uint8), np.zeros((2, 8, 3), np.uint8)],
)
def test_frames_it_cannot_measure_are_refused(frame):
    with pytest.raises(ValueError, match="frame"):
        estimate_noise_sigma(frame)


def test_the_first_estimate_decides_at_once():
    assert NoiseWatch().observe(noisy(0.1)) is True
    assert NoiseWatch().observe(noisy(0.03)) is False


def test_the_choice_changes_only_beyond_the_margin_and_by_the_recent_median():
    settings = NoiseSettings(threshold=0.07, margin=0.005, every=1, window=3)

    def states(sigmas):
        watch = NoiseWatch(settings)
        return [watch.observe(noisy(sigma, seed)) for seed, sigma in enumerate(sigmas)]

    # Within the margin above the threshold: no switch.
    assert states([0.03, 0.073, 0.073, 0.073]) == [False] * 4
    # One strong frame among mild ones does not move the median.
    assert states([0.03, 0.03, 0.12, 0.03]) == [False] * 4
    # Two of the last three strong: switch; back only below threshold - margin.
    sigmas = [0.03, 0.03, 0.12, 0.12, 0.068, 0.068, 0.068, 0.05, 0.05]
    assert states(sigmas) == [False] * 3 + [True] * 5 + [False]


def test_estimates_are_taken_every_few_frames():
    watch = NoiseWatch(NoiseSettings(every=4, window=1))
    states = [watch.observe(noisy(0.1 if i >= 2 else 0.02, i)) for i in range(9)]
    assert states == [False] * 4 + [True] * 5  # frames 0, 4 and 8 are measured
    assert len(watch.estimates) == 1 and watch.sigma == pytest.approx(0.1, rel=0.05)
