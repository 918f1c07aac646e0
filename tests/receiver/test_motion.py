"""Camera motion across a lost band (receiver.motion)."""

import numpy as np

from receiver.motion import band_motion, shifted_previous
from tests.conftest import natural_like_image


def _moved(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``out[y, x] = image[y + dy, x + dx]``, edges repeated."""
    return shifted_previous(image, (dy, dx), 0, image.shape[0])


def test_finds_a_pan_and_the_shifted_copy_restores_the_band():
    previous = natural_like_image(160, 192, seed=3)
    current = _moved(previous, 3, -5)  # the camera panned
    assert band_motion(current, previous, 64, 96) == (3, -5)
    band = shifted_previous(previous, (3, -5), 64, 96)
    assert np.array_equal(band, current[64:96])
    assert np.abs(previous[64:96].astype(int) - current[64:96]).mean() > 5  # a plain copy is off


def test_shifted_previous_moves_content_and_repeats_edges():
    previous = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3)
    out = shifted_previous(previous, (1, -2), 1, 4)
    assert out.shape == (3, 6, 3)
    assert np.array_equal(out[:, 2:], previous[2:5, :4])
    assert np.array_equal(out[:, 0], previous[2:5, 0])  # left edge repeated
    assert np.array_equal(shifted_previous(previous, (0, 0), 0, 5), previous)


def test_still_flat_and_local_motion_keep_zero_motion():
    previous = natural_like_image(128, 128, seed=4)
    assert band_motion(previous, previous, 32, 64) == (0, 0)
    flat = np.full((128, 128, 3), 90, np.uint8)
    assert band_motion(flat, flat + 1, 32, 64) == (0, 0)  # every shift fits as well
    # Only the rows above the band moved (a hand passing one edge): no agreement.
    current = previous.copy()
    current[:32] = _moved(previous, 4, 4)[:32]
    assert band_motion(current, previous, 32, 64) == (0, 0)


def test_band_at_the_edge_and_whole_picture_bands():
    previous = natural_like_image(96, 128, seed=5)
    current = _moved(previous, 0, 4)
    assert band_motion(current, previous, 0, 32) == (0, 4)  # rows below only
    assert band_motion(current, previous, 0, 96) == (0, 0)  # nothing known
