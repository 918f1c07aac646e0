"""Predicted ("inter") frames: integer latent residuals against the previous frame.

A predicted frame carries ``y - reference`` where ``reference`` is the decoder's own integer
latents of the previous frame (rescaled when the quality level changed), so encoder and
decoder predict from identical integers and nothing drifts. The decoder is fixed; how the
residual is chosen is the encoder's business (``choose_latents``).

Bitstream of one slice (a band of latent rows, ``C`` channels, ``h x w`` positions), in
decode order, all on one ANS stack:

1. ``skip_prob``: one symbol in ``0..255`` (uniform): the probability, in 1/256 units, that
   a position is skipped; ``0`` is invalid (the encoder clamps to ``1..255``);
2. ``C`` scale symbols in ``0..RESIDUAL_SCALE_COUNT`` (``SCALE_SYMBOL_MODEL``): ``0`` means
   the channel's residual is zero at every coded position of the slice, ``s > 0`` codes it
   with row ``s - 1`` of ``residual_tables()``;
3. ``h * w`` skip flags in raster order (1 = skipped: every channel's residual is zero);
4. the residuals of the active channels at the non-skipped positions, with the grouped
   coder's layout (``shared.entropy.coder``: row by row, escapes last).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext

import constriction
import numpy as np

from .entropy.coder import GroupedCoder
from .entropy.residual import RESIDUAL_SCALE_COUNT, residual_tables

SKIP_PROB_UNITS = 256
#: Fixed-point precision of the gain ratios that rescale a reference across levels.
RATIO_BITS = 16
_COST_RADIUS = 64  # residuals beyond this are costed as escapes when choosing a scale


class GainRescaler:
    """Rescales integer latents from one quality level's gains to another's, exactly.

    Every decoder must compute the same integers, so the per-channel ratio
    ``gain[new] / gain[old]`` is taken in fixed point (``RATIO_BITS``) from the model's float32
    log-gains using ``decimal`` (correctly rounded ``exp`` everywhere, unlike libm), and the
    latents are multiplied in ``int64`` with round-half-away-from-zero.
    """

    def __init__(self, log_gains: np.ndarray) -> None:
        """``log_gains``: ``(levels, C)`` float32 natural-log gains of the model."""
        scaled = np.asarray(log_gains, dtype=np.float32).astype(np.float64) * 2.0**RATIO_BITS
        self.log_gains_q = np.round(scaled).astype(np.int64)  # exact: float32 * 2**16
        self._ratios: dict[tuple[int, int], np.ndarray] = {}

    def ratio(self, old: int, new: int) -> np.ndarray:
        """``(C,)`` ``int64`` fixed-point ``gain[new] / gain[old]`` (``RATIO_BITS`` bits)."""
        key = (old, new)
        if key not in self._ratios:
            diffs = self.log_gains_q[new] - self.log_gains_q[old]
            with localcontext() as context:
                context.prec = 40
                unit = Decimal(2**RATIO_BITS)
                values = [
                    int(((Decimal(int(d)) / unit).exp() * unit).to_integral_value()) for d in diffs
                ]
            self._ratios[key] = np.array(values, dtype=np.int64)
        return self._ratios[key]

    def rescale(self, latents: np.ndarray, old: int, new: int) -> np.ndarray:
        """``latents`` ``(C, h, w)`` of level ``old`` expressed at level ``new`` (``int64``)."""
        values = latents.astype(np.int64)
        if old == new:
            return values
        ratio = self.ratio(old, new)[:, None, None]
        half = 1 << (RATIO_BITS - 1)
        magnitude = (np.abs(values) * ratio + half) >> RATIO_BITS
        return np.where(values < 0, -magnitude, magnitude)


@dataclass(frozen=True)
class QualityMap:
    """A spatial quality map: per latent position ``(h, w)``, how much coarser than plain
    coding the encoder may be there (all zeros = plain coding; ``shared.roi`` builds one from
    face boxes). Encoder-side only: the bitstream and the decoder are unchanged.

    Attributes:
        key_deadzone: key frames: a latent becomes ``0`` while ``|scaled|`` is below
            ``0.5 + key_deadzone`` (``quantize_key``).
        deadzone: predicted frames: added to ``VideoSettings.deadzone`` (``choose_latents``).
        skip_l1: predicted frames: added to ``VideoSettings.skip_l1``.
    """

    key_deadzone: np.ndarray
    deadzone: np.ndarray
    skip_l1: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.key_deadzone.shape

    def check(self, latent_shape: tuple[int, int, int]) -> None:
        """Raise ``ValueError`` unless the maps are ``(h, w)`` of ``latent_shape``."""
        for values in (self.key_deadzone, self.deadzone, self.skip_l1):
            if values.shape != tuple(latent_shape[1:]) or np.any(values < 0):
                raise ValueError(
                    f"a quality map must be non-negative and {latent_shape[1:]}, not {values.shape}"
                )


def quantize_key(scaled: np.ndarray, rounded: np.ndarray, deadzone: np.ndarray) -> np.ndarray:
    """Key-frame latents with a per-position deadzone towards zero: ``0`` where
    ``|scaled| < 0.5 + deadzone`` (``deadzone`` ``(h, w)``), else ``rounded`` (the plain
    rounding of ``scaled``, returned unchanged where ``deadzone`` is 0)."""
    return np.where(np.abs(scaled) < 0.5 + deadzone, 0, rounded).astype(rounded.dtype)


def choose_latents(
    scaled: np.ndarray,
    reference: np.ndarray,
    deadzone: float | np.ndarray,
    skip_l1: float | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The encoder's decision: the latents to send and the skipped positions.

    Args:
        scaled: ``(C, h, w)`` float gained latents of the new frame (before rounding).
        reference: ``(C, h, w)`` integer latents the decoder already has.
        deadzone: a latent keeps its reference value while ``|scaled - reference|`` is below
            ``0.5 + deadzone`` (``0`` = plain rounding), so sensor noise that nudges a value
            across a rounding boundary costs no bits. A number, or ``(h, w)`` per position
            (a ``QualityMap``).
        skip_l1: a position whose remaining residual has an L1 norm over all channels of at
            most this is skipped (its residual dropped); a number or ``(h, w)``.

    Returns ``(y, skip)``: ``(C, h, w)`` ``int64`` latents and an ``(h, w)`` bool skip map.
    """
    rounded = np.rint(scaled).astype(np.int64)
    keep = np.abs(scaled - reference) < 0.5 + deadzone
    y = np.where(keep, reference, rounded)
    residual_l1 = np.abs(y - reference).sum(axis=0)
    skip = residual_l1 <= skip_l1
    y = np.where(skip[None], reference, y)
    return y, skip


class InterCoder:
    """Codes the residual of one slice (see the module docstring for the layout)."""

    def __init__(self) -> None:
        tables = residual_tables()
        self.coder = GroupedCoder(tables)
        categorical = constriction.stream.model.Categorical
        scale_probs = np.full(RESIDUAL_SCALE_COUNT + 1, 0.5 / RESIDUAL_SCALE_COUNT)
        scale_probs[0] = 0.5
        self._scale_model = categorical(scale_probs, perfect=False)
        self._skip_prob_model = constriction.stream.model.Uniform(SKIP_PROB_UNITS)
        self._skip_models = [None] + [
            categorical(np.array([1.0 - p / SKIP_PROB_UNITS, p / SKIP_PROB_UNITS]), perfect=False)
            for p in range(1, SKIP_PROB_UNITS)
        ]
        # bits[s, v + R]: cost of residual v under scale row s (escapes: tail outside R).
        grid = np.arange(-_COST_RADIUS, _COST_RADIUS + 1)
        self._costs = np.empty((tables.channels, grid.size + 1))
        for s in range(tables.channels):
            row = tables.row(0, s).astype(np.float64)
            probability = row / row.sum()
            symbols = grid - tables.offsets[0, s]
            inside = (symbols >= 0) & (symbols < tables.lengths[0, s])
            escape_bits = 32.0 - np.log2(probability[-1])
            self._costs[s, :-1] = np.where(
                inside, -np.log2(probability[np.clip(symbols, 0, row.size - 1)]), escape_bits
            )
            self._costs[s, -1] = escape_bits

    def choose_scales(self, residual: np.ndarray) -> np.ndarray:
        """Per channel of ``residual`` ``(C, n)``: ``0`` when all zero, else ``1 +`` the row
        that codes it in the fewest bits."""
        channels, count = residual.shape
        # Histogram of each channel's values over the cost grid (escapes in the last
        # column). Residuals are mostly zero, so only the non-zero ones are binned and the
        # zeros counted per channel.
        channel, position = np.nonzero(residual)
        symbols = np.clip(residual[channel, position], -_COST_RADIUS - 1, _COST_RADIUS + 1)
        symbols += _COST_RADIUS
        symbols[symbols > 2 * _COST_RADIUS] = -1  # escapes -> last column
        width = self._costs.shape[1]
        flat = channel * width + symbols % width
        histogram = np.bincount(flat, minlength=channels * width).reshape(channels, width)
        nonzero = histogram.sum(axis=1)
        histogram[:, _COST_RADIUS] += count - nonzero
        bits = histogram.astype(np.float64) @ self._costs.T  # (C, scales)
        scales = 1 + np.argmin(bits, axis=1)
        return np.where(nonzero > 0, scales, 0)

    def encode_into(self, coder, residual: np.ndarray, skip: np.ndarray) -> None:
        """Push one slice: ``residual`` ``(C, h, w)`` integers, zero wherever ``skip``
        ``(h, w)`` is set; the decoder pops it with ``decode_from``."""
        coded = residual[:, ~skip]  # (C, n) at the coded positions, raster order
        scales = self.choose_scales(coded)
        active = np.flatnonzero(scales)
        if active.size and coded.shape[1]:
            self.coder.encode_blocks_into(coder, coded[active], scales[active] - 1, 0)
        share = float(skip.mean()) if skip.size else 0.0
        prob = int(np.clip(round(share * SKIP_PROB_UNITS), 1, SKIP_PROB_UNITS - 1))
        coder.encode_reverse(skip.ravel().astype(np.int32), self._skip_models[prob])
        coder.encode_reverse(scales.astype(np.int32), self._scale_model)
        coder.encode_reverse(np.array([prob], dtype=np.int32), self._skip_prob_model)

    def decode_from(self, decoder, channels: int, height: int, width: int) -> np.ndarray:
        """Pop one slice's ``(channels, height, width)`` ``int64`` residual."""
        prob = int(decoder.decode(self._skip_prob_model, 1)[0])
        scales = decoder.decode(self._scale_model, channels).astype(np.int64)
        model = self._skip_models[prob]
        if model is None:
            raise ValueError("invalid skip probability 0")
        skip = decoder.decode(model, height * width).astype(bool)
        residual = np.zeros((channels, height * width), dtype=np.int64)
        active = np.flatnonzero(scales)
        coded_positions = np.flatnonzero(~skip)
        if active.size and coded_positions.size:
            values = self.coder.decode_blocks_from(
                decoder, scales[active] - 1, coded_positions.size, 0
            )
            residual[np.ix_(active, coded_positions)] = values
        return residual.reshape(channels, height, width)
