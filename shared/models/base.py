"""What every zoo model shares: variable rate through gain vectors, a learned factorized
density per level, and the training/inference passes around ``g_a`` and ``g_s``.

A subclass sets ``architecture``, ``stride`` and builds ``self.g_a`` (image ``(B, 3, H, W)``
in ``[0, 1]`` -> latents ``(B, M, H/stride, W/stride)``) and ``self.g_s`` (the inverse).
Per quality level ``k`` a positive gain vector scales the latents before rounding and an
inverse gain vector rescales the integers before synthesis (Cui et al., 2021, "asymmetric
gained" VAE): one set of transforms serves every level, each level with its own
rate-distortion weight ``lambdas[k]`` and its own frozen entropy tables.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from ..entropy.density import FactorizedDensity

DEFAULT_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483)


class ConfigMixin:
    """``to_dict``/``from_dict`` for the dataclass configs (tuples travel as JSON lists)."""

    lambdas: tuple[float, ...]

    @property
    def levels(self) -> int:
        return len(self.lambdas)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict):
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(data) - set(known)
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)} for {cls.__name__}")
        values = {}
        for name, value in data.items():
            values[name] = tuple(float(x) for x in value) if name == "lambdas" else value
        return cls(**values)


class GainedLatentModel(nn.Module):
    """Base class; see the module docstring."""

    architecture = ""
    stride = 1

    def __init__(self, latent_channels: int, levels: int, gain_offset: float = 2.0) -> None:
        super().__init__()
        # Adjacent levels double lambda, so their quantizer steps differ by about sqrt(2). The
        # offset (gain ~7 at the middle level by default) makes the untrained latents large
        # enough that rounding does not erase them, which speeds up early training.
        steps = torch.tensor(
            [gain_offset + (k - (levels - 1) / 2) * 0.5 * math.log(2) for k in range(levels)]
        )
        self.log_gain = nn.Parameter(steps.view(levels, 1).repeat(1, latent_channels))
        self.log_inverse_gain = nn.Parameter(-steps.view(levels, 1).repeat(1, latent_channels))
        self.density = FactorizedDensity(latent_channels, levels)

    def gain(self, level: int) -> torch.Tensor:
        return self.log_gain[level].exp().view(1, -1, 1, 1)

    def inverse_gain(self, level: int) -> torch.Tensor:
        return self.log_inverse_gain[level].exp().view(1, -1, 1, 1)

    def penalty(self, code: torch.Tensor) -> torch.Tensor | None:
        """Extra training loss on the un-gained code ``g_a(x)``; none by default."""
        return None

    def forward(self, image: torch.Tensor, level: int) -> dict[str, torch.Tensor]:
        """Training pass: ``x_hat``, per-element ``likelihoods`` and optional ``penalty``.

        Rate uses additive uniform noise; distortion uses rounding with a straight-through
        gradient (the "mixed" quantization proxy of Minnen & Singh, 2020).
        """
        code = self.g_a(image)
        latents = code * self.gain(level)
        noisy = latents + torch.empty_like(latents).uniform_(-0.5, 0.5)
        rounded = latents + (torch.round(latents) - latents).detach()
        output = {
            "x_hat": self.g_s(rounded * self.inverse_gain(level)),
            "likelihoods": self.density.likelihood(noisy, level),
        }
        penalty = self.penalty(code)
        if penalty is not None:
            output["penalty"] = penalty
        return output

    @torch.no_grad()
    def analyze(self, image: torch.Tensor, level: int) -> torch.Tensor:
        """Integer latents ``(B, M, H/stride, W/stride)`` (a float tensor of whole numbers)."""
        return torch.round(self.g_a(image) * self.gain(level))

    @torch.no_grad()
    def synthesize(self, latents: torch.Tensor, level: int) -> torch.Tensor:
        """Reconstruction ``(B, 3, H, W)``, clamped to ``[0, 1]``, from integer latents."""
        return self.g_s(latents * self.inverse_gain(level)).clamp_(0, 1)

    @torch.no_grad()
    def estimated_bits(self, image: torch.Tensor, level: int) -> tuple[torch.Tensor, float]:
        """``(x_hat, bits)`` with rounded latents and the float density (validation)."""
        latents = self.analyze(image, level)
        bits = -torch.log2(self.density.likelihood(latents, level)).sum()
        return self.synthesize(latents, level), float(bits)

    @torch.no_grad()
    def density_cdf(self, level: int, radius: int) -> torch.Tensor:
        """CDF of each channel at ``-radius - 0.5 .. radius + 0.5``: ``(M, 2 * radius + 2)``."""
        points = torch.arange(-radius, radius + 2, dtype=torch.float64) - 0.5
        return self.density.cdf(points, level)
