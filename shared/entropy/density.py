"""Learned factorized density of latents (Ballé et al., 2018, appendix 6.1).

Each latent channel has its own non-parametric, monotone cumulative function built from a
small chain of per-channel affine maps and tanh gates. For variable-rate models there is one
such density per quality level, since the gain vectors change the latents' scale.

This is a training-time model: it is evaluated in floating point. The codec never calls it;
``tables.freeze_density`` turns it into integer frequency tables at export time.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

LIKELIHOOD_FLOOR = 1e-9


class FactorizedDensity(nn.Module):
    """Per-level, per-channel univariate densities of quantized latents.

    Args:
        channels: number of latent channels ``C``.
        levels: number of quality levels ``K``, each with independent parameters.
        filters: hidden widths of the cumulative function (Ballé uses ``(3, 3, 3)``).
        init_scale: rough initial spread of the latents.
    """

    def __init__(
        self,
        channels: int,
        levels: int = 1,
        filters: tuple[int, ...] = (3, 3, 3),
        init_scale: float = 10.0,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.levels = levels
        widths = (1, *filters, 1)
        scale = init_scale ** (1 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(widths) - 1):
            init = math.log(math.expm1(1 / scale / widths[i + 1]))
            self.matrices.append(
                nn.Parameter(torch.full((levels, channels, widths[i + 1], widths[i]), init))
            )
            self.biases.append(nn.Parameter(torch.rand(levels, channels, widths[i + 1], 1) - 0.5))
            if i < len(widths) - 2:
                self.factors.append(nn.Parameter(torch.zeros(levels, channels, widths[i + 1], 1)))

    def logits_cdf(self, values: torch.Tensor, level: int) -> torch.Tensor:
        """Logit of the CDF at ``values`` of shape ``(C, 1, N)``; returns ``(C, 1, N)``.

        Computed in the dtype of ``values`` (parameters are cast to it)."""
        logits = values
        dtype = values.dtype
        for i, matrix in enumerate(self.matrices):
            weight = F.softplus(matrix[level].to(dtype))
            logits = torch.matmul(weight, logits) + self.biases[i][level].to(dtype)
            if i < len(self.factors):
                factor = torch.tanh(self.factors[i][level].to(dtype))
                logits = logits + factor * torch.tanh(logits)
        return logits

    def likelihood(self, latents: torch.Tensor, level: int) -> torch.Tensor:
        """Probability mass of the unit interval around each value of ``(B, C, H, W)``.

        Returns a tensor of the same shape, floored at ``LIKELIHOOD_FLOOR``.
        """
        batch, channels, height, width = latents.shape
        values = latents.permute(1, 0, 2, 3).reshape(channels, 1, -1)
        lower = self.logits_cdf(values - 0.5, level)
        upper = self.logits_cdf(values + 0.5, level)
        # Evaluate on the side of the distribution where sigmoid is accurate.
        sign = -torch.sign(lower + upper).detach()
        mass = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        mass = mass.clamp_min(LIKELIHOOD_FLOOR)
        return mass.reshape(channels, batch, height, width).permute(1, 0, 2, 3)

    @torch.no_grad()
    def cdf(self, points: torch.Tensor, level: int) -> torch.Tensor:
        """CDF of every channel at the 1-D ``points``; returns ``(C, len(points))`` float64."""
        values = points.to(torch.float64).view(1, 1, -1).expand(self.channels, 1, -1)
        return torch.sigmoid(self.logits_cdf(values, level)).squeeze(1)
