"""Concealment of the pixel bands of damaged slices: inpainting, copy-previous or gray.

A damaged slice's band holds, after decoding, the synthesis of a latent prediction (the
previous frame's latents) or of zeros. ``Concealer`` replaces it:

- ``inpaint``: the inpainting network (``shared.models.inpaint``) fills the band from the
  rows around it in this frame and from the previous picture; only the damaged bands and
  ``CONTEXT_ROWS`` rows either side are run through it. Where the rows around a run of
  damaged bands did not change since the previous picture (``context_change`` at most
  ``STILL_CHANGE``, calibrated on training crops), the previous picture is copied instead.
  Otherwise the network gets the previous picture shifted by the motion measured on those
  rows (``receiver.motion``), so it starts from a fill that follows pans and moving heads.
  Without a previous picture (the stream's first frame, a new frame size) the bundled
  concealer uses ``inpaint-image``, the network trained on images alone, when it loads;
- ``motion``: the previous picture's pixels shifted by that motion, no network;
- ``copy``: the previous picture's pixels (what the receiver did before);
- ``gray``: mid-gray, a baseline.
"""

from __future__ import annotations

import numpy as np

from shared.modelfile import ModelFileError
from shared.models.inpaint import STILL_CHANGE, context_change

from .motion import band_motion, shifted_previous

METHODS = ("inpaint", "motion", "copy", "gray")
CONTEXT_ROWS = 96  # rows above and below the damaged bands that the network sees
IMAGE_MODEL = "inpaint-image"  # the bundled network for bands without a previous picture


def damaged_mask(
    height: int, width: int, damaged: list[int], slice_rows: int, stride: int
) -> np.ndarray:
    """``(H, W)`` bool: True on the pixel rows of the damaged slices."""
    mask = np.zeros((height, width), dtype=bool)
    for index in damaged:
        top = index * slice_rows * stride if slice_rows else 0
        bottom = (index + 1) * slice_rows * stride if slice_rows else height
        mask[top:bottom] = True
    return mask


class Concealer:
    """Fills damaged bands with ``method`` (one of ``METHODS``); ``motion=False`` gives
    ``inpaint`` the unshifted previous picture (for comparison)."""

    def __init__(
        self, method: str = "copy", inpainter=None, motion: bool = True, image_inpainter=None
    ) -> None:
        """``image_inpainter`` (optional) fills bands that have no previous picture;
        without it ``inpainter`` does."""
        if method not in METHODS:
            raise ValueError(f"concealment must be one of {METHODS}, not {method!r}")
        if method == "inpaint" and inpainter is None:
            raise ValueError("inpainting concealment needs an inpainting model")
        self.method = method
        self.inpainter = inpainter
        self.image_inpainter = image_inpainter or inpainter
        self.motion = motion
        self.bands = 0  # damaged bands filled so far
        self.copied = 0  # groups of damaged bands that ``inpaint`` copied (still surroundings)

    @classmethod
    def create(cls, method: str, model: str | None = None, log=print) -> Concealer:
        """``method``; for ``inpaint``, ``model`` is a zoo name or file. With ``model=None``
        (the bundled network) it falls back to ``copy``, with one line through ``log``, when
        the network cannot be loaded; a ``model`` given by name raises ``ModelFileError``,
        since it was asked for (a typo must not silently change the concealment)."""
        if method != "inpaint":
            return cls(method)
        from shared.models.inpaint import Inpainter

        try:
            if model is not None:
                return cls("inpaint", Inpainter.load(model))
            inpainter = Inpainter.load()
        except ModelFileError as error:
            if model is not None:
                raise ModelFileError(f"--inpaint-model: {error}") from error
            log(f"receiver: no inpainting model ({error}); concealing with copy-previous")
            return cls("copy")
        try:  # for frames without a previous picture; measured better there (inpaint.md)
            image_inpainter = Inpainter.load(IMAGE_MODEL)
        except ModelFileError as error:
            log(f"receiver: no {IMAGE_MODEL} model ({error}); the first frame uses inpaint")
            image_inpainter = None
        return cls("inpaint", inpainter, image_inpainter=image_inpainter)

    def __call__(
        self,
        rgb: np.ndarray,
        previous: np.ndarray | None,
        damaged: list[int],
        slice_rows: int,
        stride: int,
    ) -> np.ndarray:
        """``rgb`` with the bands of ``damaged`` slices filled; ``previous`` is the last
        picture shown (``None`` or of another size: copy and motion leave the bands as
        decoded)."""
        if not damaged:
            return rgb
        if previous is not None and previous.shape != rgb.shape:
            previous = None
        height, width = rgb.shape[:2]
        mask = damaged_mask(height, width, damaged, slice_rows, stride)
        self.bands += len(damaged)
        if self.method == "gray":
            out = rgb.copy()
            out[mask] = 128
            return out
        if self.method == "copy":
            if previous is None:
                return rgb
            out = rgb.copy()
            out[mask] = previous[mask]
            return out
        out = rgb.copy()
        for group in _groups(sorted(damaged), slice_rows * stride):
            hole = damaged_mask(height, width, group, slice_rows, stride)
            rows = np.flatnonzero(hole[:, 0])
            first, end = int(rows[0]), int(rows[-1]) + 1
            if self.method == "motion":
                if previous is not None:
                    motion = band_motion(rgb, previous, first, end)
                    band = hole[first:end]
                    out[first:end][band] = shifted_previous(previous, motion, first, end)[band]
                continue
            if previous is not None:
                change = context_change(rgb, previous, hole)
                if change is not None and change <= STILL_CHANGE:
                    out[hole] = previous[hole]  # still surroundings: copy (see STILL_CHANGE)
                    self.copied += 1
                    continue
            top = max(0, first - CONTEXT_ROWS)
            bottom = min(height, end + CONTEXT_ROWS)
            part = None
            if previous is not None:
                motion = band_motion(rgb, previous, first, end) if self.motion else (0, 0)
                part = shifted_previous(previous, motion, top, bottom)
            inpainter = self.inpainter if part is not None else self.image_inpainter
            out[top:bottom] = inpainter(out[top:bottom], hole[top:bottom], part)
        return out


def _groups(indices: list[int], band_rows: int) -> list[list[int]]:
    """Sorted slice indices (bands of ``band_rows`` pixel rows) split into groups concealed
    together: runs of consecutive slices, merged while at most ``2 * CONTEXT_ROWS`` intact
    rows lie between two runs. The groups' windows then never overlap, so however a frame's
    slices are cut and lost, concealing it costs at most one network pass over the frame
    and a motion search per ``2 * CONTEXT_ROWS`` rows."""
    groups: list[list[int]] = []
    for index in indices:
        if groups and (index - groups[-1][-1] - 1) * band_rows <= 2 * CONTEXT_ROWS:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups
