"""``hyperprior``: a scale hyperprior (Ballé et al., 2018) with a device-exact prior network.

``g_a``/``g_s`` are the ``factorized`` model's transforms or, with ``transforms="realtime"``,
the real-time model's (stride 16, ``latent`` channels either way). The
hyper-analysis ``h_a`` maps the un-gained code ``|g_a(x)|`` to hyper-latents ``z``
``(B, hyper, ceil(h/4), ceil(w/4))``, coded with a learned factorized density (one level:
``z`` does not depend on the quality level). The hyper-synthesis ``h_s`` maps the rounded
``z`` to the log standard deviation of each un-gained latent; adding the level's log gain
gives the log scale of the gained latent, which selects one of ``SCALE_COUNT`` frozen
Gaussian tables.

In training ``h_s`` runs in floating point. At export it becomes an ``IntegerNetwork``, and
``table_indices`` computes the table index of every latent in integer arithmetic only, so
the encoder and any decoder, on any device, pick the same tables.

Prior tiles: the models train on 128-pixel crops, i.e. ``PRIOR_TILE`` x ``PRIOR_TILE``
latents and 2x2 hyper-latents whose every position touches the zero padding of ``h_a`` and
``h_s``. Run over a whole frame, both networks see interior positions they never trained
on, and the realtime model then spent up to 2.7x the bits of the same frame coded tile by
tile. So the hyper-analysis (encoder) and the prior network (both ends: it is part of the
bitstream's definition) run on each ``PRIOR_TILE`` x ``PRIOR_TILE`` tile of latents (edge
tiles smaller) on its own, exactly as in training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..entropy.density import LIKELIHOOD_FLOOR, FactorizedDensity
from ..entropy.gaussian import SCALE_COUNT, SCALE_MAX, SCALE_MIN
from .base import DEFAULT_LAMBDAS, ConfigMixin, GainedLatentModel
from .integer import ACT_BITS, IntegerNetwork, OutputHead, pixel_shuffle
from .layers import analysis_stack, conv, synthesis_stack
from .realtime import realtime_analysis, realtime_synthesis

#: Up to 2 bpp on Kodak: two levels above ``DEFAULT_LAMBDAS``.
HYPERPRIOR_LAMBDAS = (*DEFAULT_LAMBDAS, 0.0932, 0.18)


@dataclass
class HyperpriorConfig(ConfigMixin):
    """``transforms``: ``"factorized"`` (channels ``hidden``) or ``"realtime"`` (channels
    ``fine``/``coarse``); ``latent``: latent channels; ``hyper``: channels of ``h_a``/``h_s``
    and of ``z``; ``lambdas``: one weight per quality level."""

    transforms: str = "factorized"
    hidden: int = 64
    fine: int = 48
    coarse: int = 96
    latent: int = 96
    hyper: int = 64
    lambdas: tuple[float, ...] = field(default_factory=lambda: HYPERPRIOR_LAMBDAS)


PRIOR_TILE = 8  # latent positions per prior tile side (a 128-pixel training crop)


def prior_tiles(height: int, width: int, tile: int = PRIOR_TILE):
    """``(top, left, bottom, right)`` of each prior tile of an ``height x width`` latent
    grid, in raster order (edge tiles are smaller)."""
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            yield top, left, min(top + tile, height), min(left + tile, width)


def _log_scale_bounds() -> tuple[float, float]:
    return math.log(SCALE_MIN), math.log(SCALE_MAX)


def _fixed_log_scale_bounds() -> tuple[int, int]:
    """``_log_scale_bounds`` in ``ACT_BITS`` fixed point."""
    low, high = _log_scale_bounds()
    return round(low * 2**ACT_BITS), round(high * 2**ACT_BITS)


def _table_index_of_position(position: np.ndarray) -> np.ndarray:
    """Table index of each position ``p`` (``float64`` holding integers ``0 .. high -
    low``, the fixed-point log scale minus ``low``): the nearest of ``SCALE_COUNT``
    steps, rounding half up, i.e. the integer formula ``(p * (SCALE_COUNT - 1) + (high -
    low) // 2) // (high - low)``. Returns ``float32`` holding those integers.

    Computed in ``float32``, exactly: the numerator is an integer below ``2**24``, so it
    is exact; the quotient is correctly rounded, so it is exact when the division is, and
    otherwise the true quotient lies at least ``1 / (high - low)`` from every integer
    while the rounding moves it by at most ``SCALE_COUNT * 2**-24`` (far less), so the
    floor is the integer division's. About 3x faster here than a lookup table of the
    positions (``np.take`` on int16 indices)."""
    low, high = _fixed_log_scale_bounds()
    index = np.multiply(position, SCALE_COUNT - 1, dtype=np.float32)
    index += (high - low) // 2
    index /= high - low
    return np.floor(index, out=index)


# What _table_index_of_position's exactness rests on, for these tables:
_low, _high = _fixed_log_scale_bounds()
assert (_high - _low) * (SCALE_COUNT - 1) + (_high - _low) // 2 < 2**24  # exact numerators
assert SCALE_COUNT * 2.0**-24 < 1 / (_high - _low)  # rounding cannot reach the next integer
del _low, _high


class HyperpriorModel(GainedLatentModel):
    architecture = "hyperprior"
    stride = 16

    def __init__(self, config: HyperpriorConfig) -> None:
        super().__init__(config.latent, config.levels)
        self.config = config
        hyper = config.hyper
        if config.transforms == "factorized":
            self.g_a = analysis_stack(config.hidden, config.latent)
            self.g_s = synthesis_stack(config.latent, config.hidden)
        elif config.transforms == "realtime":
            self.g_a = realtime_analysis(config.fine, config.coarse, config.latent)
            self.g_s = realtime_synthesis(config.fine, config.coarse, config.latent)
        else:
            raise ValueError(f"unknown transforms {config.transforms!r}")
        self.h_a = nn.Sequential(
            conv(config.latent, hyper, 3),
            nn.ReLU(),
            conv(hyper, hyper, 3, 2),
            nn.ReLU(),
            conv(hyper, hyper, 3, 2),
        )
        self.h_s = nn.Sequential(
            conv(hyper, hyper, 3),
            nn.ReLU(),
            conv(hyper, 4 * hyper, 3),
            nn.PixelShuffle(2),
            nn.ReLU(),
            # 1x1: at 1/32 resolution a 3x3 layer would cost 9x the time of the rest of
            # the (exact, float64) prior network.
            conv(hyper, 4 * config.latent, 1),
            nn.PixelShuffle(2),
        )
        # z's density; ``self.density`` (from the base class) is unused by this model.
        self.density = FactorizedDensity(hyper, 1)
        self.integer_h_s: IntegerNetwork | None = None

    def hyper_latents(self, code: torch.Tensor) -> torch.Tensor:
        """Un-rounded ``z`` of the un-gained code ``(B, latent, h, w)``."""
        return self.h_a(code.abs())

    def tiled_hyper_latents(self, code: torch.Tensor) -> torch.Tensor:
        """Un-rounded ``z`` ``(1, hyper, ceil(h/4), ceil(w/4))`` of a ``(1, latent, h, w)``
        code, each prior tile analysed on its own (see the module docstring); tiles of one
        shape run as one batch."""
        _, _, height, width = code.shape
        groups: dict[tuple[int, int], list[tuple[int, int, int, int]]] = {}
        for box in prior_tiles(height, width):
            groups.setdefault((box[2] - box[0], box[3] - box[1]), []).append(box)
        z = None
        for boxes in groups.values():
            batch = torch.cat(
                [code[:, :, top:bottom, left:right] for top, left, bottom, right in boxes]
            )
            out = self.hyper_latents(batch)
            if z is None:
                z = out.new_zeros((1, out.shape[1], -(-height // 4), -(-width // 4)))
            for (top, left, _, _), tile in zip(boxes, out, strict=True):
                rows, cols = tile.shape[1:]
                z[0, :, top // 4 : top // 4 + rows, left // 4 : left // 4 + cols] = tile
        return z

    def log_scales(
        self,
        z_hat: torch.Tensor,
        level: int,
        size: tuple[int, int],
        tiles: tuple[int, int, int] | None = None,
    ) -> torch.Tensor:
        """Float log standard deviations of the gained latents (training and evaluation);
        ``tiles``: ``z_hat`` is a batch of prior tiles (see ``prior_input``)."""
        log_sigma = self.h_s(z_hat)
        if tiles is not None:
            log_sigma = _from_tiles(log_sigma, *tiles)
        log_sigma = log_sigma[:, :, : size[0], : size[1]]
        low, high = _log_scale_bounds()
        return (log_sigma + self.log_gain[level].view(1, -1, 1, 1)).clamp(low, high)

    @staticmethod
    def prior_input(code: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int] | None]:
        """The code as training and validation feed ``h_a``: when its height and width
        are multiples of ``PRIOR_TILE`` (crops of multiples of 128 pixels), a batch of the
        ``PRIOR_TILE x PRIOR_TILE`` prior tiles, each on its own as the codec runs them,
        and ``(batch, tile rows, tile columns)`` to put ``h_s``'s output back together;
        otherwise the code itself and ``None``."""
        batch, _, height, width = code.shape
        if height % PRIOR_TILE or width % PRIOR_TILE:
            return code, None
        rows, cols = height // PRIOR_TILE, width // PRIOR_TILE
        return _to_tiles(code, PRIOR_TILE), (batch, rows, cols)

    def forward(self, image: torch.Tensor, level: int) -> dict:
        code = self.g_a(image)
        latents = code * self.gain(level)
        prior_input, tiles = self.prior_input(code)
        z = self.hyper_latents(prior_input)
        z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5)
        z_rounded = z + (torch.round(z) - z).detach()
        scales = self.log_scales(z_rounded, level, latents.shape[2:], tiles).exp()
        noisy = latents + torch.empty_like(latents).uniform_(-0.5, 0.5)
        rounded = latents + (torch.round(latents) - latents).detach()
        return {
            "x_hat": self.g_s(rounded * self.inverse_gain(level)),
            "likelihoods": [
                gaussian_likelihood(noisy, scales),
                self.density.likelihood(z_noisy, 0),
            ],
        }

    @torch.no_grad()
    def density_cdf(self, level: int, radius: int) -> torch.Tensor:
        """CDF of ``z``'s density (one level whatever ``level``); see the base class."""
        points = torch.arange(-radius, radius + 2, dtype=torch.float64) - 0.5
        return self.density.cdf(points, 0)

    @torch.no_grad()
    def estimated_bits(self, image: torch.Tensor, level: int) -> tuple[torch.Tensor, float]:
        """``(x_hat, bits)`` with rounded latents and the float entropy models (validation)."""
        code = self.g_a(image)
        latents = torch.round(code * self.gain(level))
        prior_input, tiles = self.prior_input(code)
        z = torch.round(self.hyper_latents(prior_input))
        scales = self.log_scales(z, level, latents.shape[2:], tiles).exp()
        bits = -torch.log2(gaussian_likelihood(latents, scales)).sum()
        bits += -torch.log2(self.density.likelihood(z, 0)).sum()
        x_hat = self.g_s(latents * self.inverse_gain(level)).clamp(0, 1)
        return x_hat, float(bits)

    def _output_head(self, level: int) -> OutputHead:
        """What the prior network adds to its output for ``level`` and where it clips
        (exactly, inside its last convolution; see ``OutputHead``): the level's log gain
        in ``ACT_BITS`` fixed point, in ``PixelShuffle``'s channel order, relative to the
        fixed-point log scale of the first table, so that its output is the position that
        ``_table_index_of_position`` takes; clipped to that range. Computed from the gains
        at every call (about 30 microseconds), so it can never be stale."""
        log_gain = self.log_gain[level].detach().double().numpy()
        if not np.all(np.isfinite(log_gain)):
            raise ValueError(f"level {level} has gains that are not finite")
        low, high = _fixed_log_scale_bounds()
        factor = self.integer_h_s.final_shuffle
        offset = np.repeat(np.round(log_gain * 2**ACT_BITS), factor * factor) - low
        return OutputHead(offset.astype(np.int64), 0, high - low)

    def check_prior(self) -> None:
        """Raise ``ValueError`` unless the integer prior network can run every level (it
        ends in a convolution, the gains are finite and within its exactness bounds):
        what the codec checks when it loads a model file, instead of failing per frame."""
        if self.integer_h_s is None:
            raise ValueError("the integer hyper-synthesis is not loaded")
        probe = np.zeros((self.config.hyper, PRIOR_TILE // 4, PRIOR_TILE // 4), dtype=np.int32)
        for level in range(self.config.levels):
            self.table_indices(probe, level, (PRIOR_TILE, PRIOR_TILE))

    def table_indices(self, z: np.ndarray, level: int, size: tuple[int, int]) -> np.ndarray:
        """Gaussian table index ``(latent, h, w)`` ``int16`` of each latent, from the integer
        hyper-latents ``z`` ``(hyper, ceil(h/4), ceil(w/4))``, in integer arithmetic only,
        each prior tile on its own (see the module docstring)."""
        if self.integer_h_s is None:
            raise RuntimeError("the integer hyper-synthesis is not loaded (export the model)")
        height, width = size
        head = self._output_head(level)
        factor = self.integer_h_s.final_shuffle
        indices = np.empty((self.config.latent, height, width), dtype=np.int16)
        # The network's output before its final pixel shuffle holds integer positions
        # 0 .. high - low (it adds the level's log gain and clips; see
        # ``_output_head``); the shuffle only moves values, so it runs on the indices.
        z_tile = PRIOR_TILE // 4
        if z.shape[1:] == (z_tile * -(-height // PRIOR_TILE), z_tile * -(-width // PRIOR_TILE)):
            # Every tile's hyper-latents are a full z_tile x z_tile window (edge tiles with
            # fewer latent rows or columns too: the network's output is the same, only less
            # of it is used), so the windows run as one grid.
            position = self.integer_h_s.run_tiles(z, z_tile, final_shuffle=False, head=head)
            pixel_shuffle(_table_index_of_position(position), factor, out=indices[:, None])
            return indices
        # Otherwise tiles whose hyper-latent crops have one shape run as one batch.
        groups: dict[tuple[int, int], list[tuple[int, int, int, int]]] = {}
        for top, left, bottom, right in prior_tiles(height, width):
            z_shape = (-(-bottom // 4) - top // 4, -(-right // 4) - left // 4)
            groups.setdefault(z_shape, []).append((top, left, bottom, right))
        for (z_rows, z_cols), boxes in groups.items():
            batch = np.stack(
                [
                    z[:, top // 4 : top // 4 + z_rows, left // 4 : left // 4 + z_cols]
                    for top, left, _, _ in boxes
                ]
            )
            position = self.integer_h_s.run_planar(batch, final_shuffle=False, head=head)
            tiles = pixel_shuffle(_table_index_of_position(position), factor)
            for n, (top, left, bottom, right) in enumerate(boxes):
                indices[:, top:bottom, left:right] = tiles[:, n, : bottom - top, : right - left]
        return indices


def _to_tiles(x: torch.Tensor, tile: int) -> torch.Tensor:
    """``(B, C, R * tile, Q * tile)`` -> ``(B * R * Q, C, tile, tile)``, tiles in raster
    order within each batch item."""
    batch, channels, height, width = x.shape
    rows, cols = height // tile, width // tile
    grid = x.reshape(batch, channels, rows, tile, cols, tile).permute(0, 2, 4, 1, 3, 5)
    return grid.reshape(batch * rows * cols, channels, tile, tile)


def _from_tiles(x: torch.Tensor, batch: int, rows: int, cols: int) -> torch.Tensor:
    """Inverse of ``_to_tiles`` for tiles of any (equal) size: ``(B * R * Q, C, t, t)``
    -> ``(B, C, R * t, Q * t)``."""
    _, channels, tile_h, tile_w = x.shape
    grid = x.reshape(batch, rows, cols, channels, tile_h, tile_w).permute(0, 3, 1, 4, 2, 5)
    return grid.reshape(batch, channels, rows * tile_h, cols * tile_w)


def gaussian_likelihood(values: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Mass of ``N(0, scales^2)`` on the unit interval around each value, floored."""
    scales = scales.clamp_min(SCALE_MIN)
    upper = (0.5 - values.abs()) / scales
    lower = (-0.5 - values.abs()) / scales
    mass = 0.5 * (torch.erfc(-upper / math.sqrt(2)) - torch.erfc(-lower / math.sqrt(2)))
    return mass.clamp_min(LIKELIHOOD_FLOOR)
