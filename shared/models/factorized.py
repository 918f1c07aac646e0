"""The default real-time model: a convolutional autoencoder with a factorized prior.

Analysis: four strided convolutions with simplified GDN, ``(B, 3, H, W)`` ->
``(B, M, H/16, W/16)``; synthesis: four sub-pixel convolutions with inverse GDN. Variable
rate and the entropy model come from ``GainedLatentModel``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .base import DEFAULT_LAMBDAS, ConfigMixin, GainedLatentModel
from .layers import analysis_stack, synthesis_stack


@dataclass
class FactorizedConfig(ConfigMixin):
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


class FactorizedModel(GainedLatentModel):
    architecture = "factorized"
    stride = 16

    def __init__(self, config: FactorizedConfig) -> None:
        super().__init__(config.latent, config.levels)
        self.config = config
        self.g_a = analysis_stack(config.hidden, config.latent)
        self.g_s = synthesis_stack(config.latent, config.hidden)
