"""Building blocks of the analysis and synthesis transforms."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class SimplifiedGDN(nn.Module):
    """Simplified generalized divisive normalization (Johnston et al., 2019).

    ``y_i = x_i / (beta_i + sum_j gamma_ij |x_j|)``, or its inverse ``x_i * (...)`` when
    ``inverse=True``. It needs no square or square root, so it is cheaper than the original
    GDN while reaching the same rate-distortion performance in the paper's experiments.
    Shapes: input and output are ``(B, C, H, W)``.
    """

    def __init__(self, channels: int, inverse: bool = False) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta_raw = nn.Parameter(torch.ones(channels))
        # Off-diagonal entries start small but non-zero: with the squared parametrisation an
        # exact zero would have zero gradient and could never move.
        self.gamma_raw = nn.Parameter(0.1 * torch.eye(channels) + 0.01)

    def _params(self) -> tuple[torch.Tensor, torch.Tensor]:
        # Squares keep beta > 0 and gamma >= 0 without projected optimisation.
        beta = self.beta_raw.square() + 1e-6
        gamma = self.gamma_raw.square()
        return beta, gamma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta, gamma = self._params()
        channels = gamma.shape[0]
        norm = F.conv2d(x.abs(), gamma.view(channels, channels, 1, 1), beta)
        return x * norm if self.inverse else x / norm


def conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2)


class SubpixelUp(nn.Sequential):
    """2x upsampling: a convolution to ``4 * out`` channels, then pixel shuffle.

    Cheaper on CPU than a transposed convolution of the same receptive field.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3) -> None:
        super().__init__(conv(in_channels, 4 * out_channels, kernel), nn.PixelShuffle(2))


def analysis_stack(hidden: int, latent: int) -> nn.Sequential:
    """Four stride-2 convolutions with simplified GDN: ``(B, 3, H, W)`` -> ``(B, latent,
    H/16, W/16)``."""
    return nn.Sequential(
        conv(3, hidden, 5, 2),
        SimplifiedGDN(hidden),
        conv(hidden, hidden, 3, 2),
        SimplifiedGDN(hidden),
        conv(hidden, hidden, 3, 2),
        SimplifiedGDN(hidden),
        conv(hidden, latent, 3, 2),
    )


def synthesis_stack(latent: int, hidden: int) -> nn.Sequential:
    """Four sub-pixel 2x upsamplings with inverse GDN, the mirror of ``analysis_stack``."""
    return nn.Sequential(
        SubpixelUp(latent, hidden),
        SimplifiedGDN(hidden, inverse=True),
        SubpixelUp(hidden, hidden),
        SimplifiedGDN(hidden, inverse=True),
        SubpixelUp(hidden, hidden),
        SimplifiedGDN(hidden, inverse=True),
        SubpixelUp(hidden, 3),
    )
