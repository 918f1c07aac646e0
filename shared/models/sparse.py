"""``sparse``: a convolutional autoencoder whose code is pushed to sparsity.

The analysis transform ends in a sigmoid, so each code unit ``j`` is an activation in
``(0, 1)``. Training adds ``eta * sum_j KL(p || q_j)``, the KL divergence between a target
activation rate ``p`` and each unit's mean activation ``q_j`` over the batch, to the
rate-distortion loss (the sparse-autoencoder penalty). Quantized, most latents of a sparse
code are exactly zero; the benchmark reports that fraction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .base import DEFAULT_LAMBDAS, ConfigMixin, GainedLatentModel
from .layers import analysis_stack, synthesis_stack


@dataclass
class SparseConfig(ConfigMixin):
    """Attributes: ``hidden``/``latent`` channels, ``sparsity_target`` p (mean activation
    aimed at), ``sparsity_weight`` eta (bits per pixel per nat of KL), ``lambdas``."""

    hidden: int = 64
    latent: int = 96
    sparsity_target: float = 0.05
    sparsity_weight: float = 0.01
    lambdas: tuple[float, ...] = field(default_factory=lambda: DEFAULT_LAMBDAS)


def kl_sparsity(code: torch.Tensor, target: float) -> torch.Tensor:
    """``sum_j KL(p || q_j)`` in nats, ``q_j`` the mean of channel ``j`` of ``(B, C, H, W)``."""
    q = code.mean(dim=(0, 2, 3)).clamp(1e-6, 1 - 1e-6)
    p = torch.as_tensor(target, dtype=code.dtype, device=code.device)
    return (p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))).sum()


class SparseModel(GainedLatentModel):
    architecture = "sparse"
    stride = 16

    def __init__(self, config: SparseConfig) -> None:
        if not 0 < config.sparsity_target < 1:
            raise ValueError("sparsity_target must be in (0, 1)")
        # Codes live in (0, 1): a larger gain offset spreads them over more integers.
        super().__init__(config.latent, config.levels, gain_offset=3.0)
        self.config = config
        self.g_a = nn.Sequential(*analysis_stack(config.hidden, config.latent), nn.Sigmoid())
        self.g_s = synthesis_stack(config.latent, config.hidden)

    def penalty(self, code: torch.Tensor) -> torch.Tensor:
        return self.config.sparsity_weight * kl_sparsity(code, self.config.sparsity_target)
