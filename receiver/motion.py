"""Camera motion across a lost band, for concealing it with a shifted previous picture.

A lost slice is a band of whole pixel rows. The rows just above and below it did arrive,
so a pan or tilt of the camera between the previous picture and this one can be measured
there: the integer shift of the previous picture that best matches those rows (mean
absolute difference on gray, full search within ``SEARCH_PX``) is taken to hold inside
the band too. Copying the previous picture shifted that way follows the pan that a plain
copy tears; the inpainting network then starts from it.

The shift is kept only when it is the same (within ``AGREE_PX``) above and below the band
and matches clearly better than no motion (``MIN_GAIN``); otherwise the motion is zero.
Local motion (a hand or a head moving past one edge of the band) fails the first test,
flat or still pictures the second.

One shift per band, not per column block: on clips outside ``benchmarks conceal``'s set
(carphone, container, mobile_calendar, two_people, office_talking_720p, flower_720p; 40
frames each, ``realtime`` level 4, one lost slice per frame) 64-pixel blocks concealed
those pans better (25.58 against 25.51 dB with the network), but on the benchmark's
talking-head and sign-language clips per-block shifts followed local motion that did not
hold inside the band (−0.10 dB against the unshifted picture), one shift per band cost
nothing there.
"""

from __future__ import annotations

import numpy as np

SEARCH_PX = 8  # largest shift tried, pixels, both axes
MATCH_ROWS = 16  # known rows above and below the band that are matched, pixels
AGREE_PX = 1  # the shifts found above and below the band may differ by this much, pixels
MIN_GAIN = 0.25  # a shift must lower the mean absolute difference by this much (8-bit units)


def _gray(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def band_motion(
    current: np.ndarray, previous: np.ndarray, first: int, end: int, search: int = SEARCH_PX
) -> tuple[int, int]:
    """The shift ``(dy, dx)`` (pixels) such that ``previous[y + dy, x + dx]`` predicts
    ``current[y, x]`` in the band of rows ``[first, end)``, measured on the known rows
    within ``MATCH_ROWS`` of it; ``(0, 0)`` when no known row exists or the best shift
    fails the agreement (``AGREE_PX``) or gain (``MIN_GAIN``) test. ``current`` and
    ``previous``: ``(H, W, 3)`` ``uint8``, same size."""
    height, width = current.shape[:2]
    sides = [
        rows
        for rows in (
            np.arange(max(0, first - MATCH_ROWS), first),
            np.arange(end, min(height, end + MATCH_ROWS)),
        )
        if rows.size
    ]
    if not sides:
        return 0, 0
    # Only the previous picture's rows that a shifted side row can reach are needed; edge
    # padding of that window equals the whole picture's wherever a shift reaches past it.
    low = max(0, first - MATCH_ROWS - search)
    padded = np.pad(_gray(previous[low : min(height, end + MATCH_ROWS + search)]), search, "edge")
    shifts = [(dy, dx) for dy in range(-search, search + 1) for dx in range(-search, search + 1)]
    # Sum of absolute differences per side of the band and shift.
    cost = np.empty((len(sides), len(shifts)), dtype=np.float64)
    for s, rows in enumerate(sides):
        target = _gray(current[rows])
        for i, (dy, dx) in enumerate(shifts):
            moved = padded[rows - low + search + dy, search + dx : search + dx + width]
            cost[s, i] = float(np.abs(target - moved).sum())
    mean = cost.sum(axis=0) / (sum(rows.size for rows in sides) * width)
    best = int(mean.argmin())
    if mean[shifts.index((0, 0))] <= mean[best] + MIN_GAIN:
        return 0, 0
    if len(sides) == 2:
        above, below = (np.array(shifts[int(c.argmin())]) for c in cost)
        if np.abs(above - below).max() > AGREE_PX:
            return 0, 0
    return shifts[best]


def shifted_previous(
    previous: np.ndarray, motion: tuple[int, int], top: int, bottom: int
) -> np.ndarray:
    """Rows ``[top, bottom)`` of ``previous`` moved by ``motion`` (``out[y, x] =
    previous[y + dy, x + dx]``, edge pixels repeated past the border); ``uint8`` like
    ``previous``."""
    dy, dx = motion
    height, width = previous.shape[:2]
    rows = np.clip(np.arange(top + dy, bottom + dy), 0, height - 1)
    columns = np.clip(np.arange(dx, width + dx), 0, width - 1)
    return np.take(np.take(previous, rows, axis=0), columns, axis=1)  # 4x a 2-D index
