"""``dense``: the fully-connected autoencoder of the classic tutorial, made a real codec.

Each ``block x block`` RGB block is flattened and mapped by one dense layer to a code of
``latent`` numbers (the "PCA-like" autoencoder; code sizes 32 to 1000 are typical), which is
quantized and entropy-coded like every other model; a second dense layer and a sigmoid map
the code back to the block. A dense layer per block is written as a convolution with kernel
and stride ``block`` (encoder) and a 1x1 convolution plus pixel shuffle (decoder), which is
the same linear map, applied to every block of a frame at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from .base import DEFAULT_LAMBDAS, ConfigMixin, GainedLatentModel


@dataclass
class DenseConfig(ConfigMixin):
    """Attributes: ``block`` side in pixels, ``latent`` code size per block, ``lambdas``."""

    block: int = 32
    latent: int = 256
    lambdas: tuple[float, ...] = field(default_factory=lambda: DEFAULT_LAMBDAS)


class DenseModel(GainedLatentModel):
    architecture = "dense"

    def __init__(self, config: DenseConfig) -> None:
        if not 1 <= config.latent <= 3 * config.block**2:
            raise ValueError("dense code size must be between 1 and the block's 3*block^2 values")
        super().__init__(config.latent, config.levels)
        self.config = config
        self.stride = config.block
        block = config.block
        self.g_a = nn.Conv2d(3, config.latent, kernel_size=block, stride=block)
        self.g_s = nn.Sequential(
            nn.Conv2d(config.latent, 3 * block * block, kernel_size=1),
            nn.PixelShuffle(block),
            nn.Sigmoid(),
        )
