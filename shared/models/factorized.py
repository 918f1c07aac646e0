"""Variable-rate convolutional autoencoder with a factorized prior.

Analysis ``g_a`` maps an RGB image ``(B, 3, H, W)`` in ``[0, 1]`` to latents
``(B, M, H/16, W/16)``; per quality level ``k`` a positive gain vector scales the latents
before rounding, and an inverse gain vector rescales the integers before synthesis ``g_s``
(Cui et al., 2021, "asymmetric gained" VAE). One set of transforms serves every level; each
level has its own rate-distortion trade-off ``lambdas[k]`` and its own frozen entropy tables.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..entropy.density import FactorizedDensity
from .layers import SimplifiedGDN, SubpixelUp, conv

DEFAULT_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483)


@dataclass
class FactorizedConfig:
    """Architecture of a ``FactorizedModel``.

    Attributes:
        hidden: channels ``N`` of the hidden layers.
        latent: channels ``M`` of the latent tensor.
        lambdas: rate-distortion weights, one per quality level, lowest rate first, for the
            loss ``bits/pixel + lambda * 255**2 * MSE``.
    """

    hidden: int = 64
    latent: int = 96
    lambdas: tuple[float, ...] = field(default_factory=lambda: DEFAULT_LAMBDAS)

    @property
    def levels(self) -> int:
        return len(self.lambdas)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["lambdas"] = list(self.lambdas)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> FactorizedConfig:
        return cls(
            hidden=int(data["hidden"]),
            latent=int(data["latent"]),
            lambdas=tuple(float(x) for x in data["lambdas"]),
        )


class FactorizedModel(nn.Module):
    """Analysis/synthesis transforms, gain vectors and per-level factorized densities."""

    architecture = "factorized"
    stride = 16

    def __init__(self, config: FactorizedConfig) -> None:
        super().__init__()
        self.config = config
        n, m, levels = config.hidden, config.latent, config.levels
        self.g_a = nn.Sequential(
            conv(3, n, 5, 2),
            SimplifiedGDN(n),
            conv(n, n, 3, 2),
            SimplifiedGDN(n),
            conv(n, n, 3, 2),
            SimplifiedGDN(n),
            conv(n, m, 3, 2),
        )
        self.g_s = nn.Sequential(
            SubpixelUp(m, n),
            SimplifiedGDN(n, inverse=True),
            SubpixelUp(n, n),
            SimplifiedGDN(n, inverse=True),
            SubpixelUp(n, n),
            SimplifiedGDN(n, inverse=True),
            SubpixelUp(n, 3),
        )
        # Adjacent levels double lambda, so their quantizer steps differ by about sqrt(2). The
        # offset of 2 (gain ~7 at the middle level) makes the untrained latents large enough
        # that rounding does not erase them, which speeds up early training several times.
        steps = torch.tensor(
            [2.0 + (k - (levels - 1) / 2) * 0.5 * math.log(2) for k in range(levels)]
        )
        self.log_gain = nn.Parameter(steps.view(levels, 1).repeat(1, m))
        self.log_inverse_gain = nn.Parameter(-steps.view(levels, 1).repeat(1, m))
        self.density = FactorizedDensity(m, levels)

    def gain(self, level: int) -> torch.Tensor:
        return self.log_gain[level].exp().view(1, -1, 1, 1)

    def inverse_gain(self, level: int) -> torch.Tensor:
        return self.log_inverse_gain[level].exp().view(1, -1, 1, 1)

    def forward(self, image: torch.Tensor, level: int) -> dict[str, torch.Tensor]:
        """Training pass. Returns ``x_hat`` and per-element ``likelihoods`` of the latents.

        Rate uses additive uniform noise; distortion uses rounding with a straight-through
        gradient (the "mixed" quantization proxy of Minnen & Singh, 2020).
        """
        latents = self.g_a(image) * self.gain(level)
        noisy = latents + torch.empty_like(latents).uniform_(-0.5, 0.5)
        rounded = latents + (torch.round(latents) - latents).detach()
        x_hat = self.g_s(rounded * self.inverse_gain(level))
        return {"x_hat": x_hat, "likelihoods": self.density.likelihood(noisy, level)}

    @torch.no_grad()
    def analyze(self, image: torch.Tensor, level: int) -> torch.Tensor:
        """Integer latents ``(B, M, H/16, W/16)`` (float tensor of whole numbers)."""
        return torch.round(self.g_a(image) * self.gain(level))

    @torch.no_grad()
    def synthesize(self, latents: torch.Tensor, level: int) -> torch.Tensor:
        """Reconstruction ``(B, 3, H, W)``, clamped to ``[0, 1]``, from integer latents."""
        return self.g_s(latents * self.inverse_gain(level)).clamp_(0, 1)

    @torch.no_grad()
    def density_cdf(self, level: int, radius: int) -> torch.Tensor:
        """CDF of each channel at ``-radius - 0.5 .. radius + 0.5``: ``(M, 2 * radius + 2)``."""
        points = torch.arange(-radius, radius + 2, dtype=torch.float64) - 0.5
        return self.density.cdf(points, level)
