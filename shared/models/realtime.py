"""``realtime``: the default model, sized for 640x480 at 30 fps on one CPU core per end.

The budget is about 10 ms of transforms per 640x480 frame and end, so full-resolution
work is limited to reshapes: the analysis transform starts with a 4x4 patch embedding
(a stride-4 convolution) and the synthesis transform ends with a 1x1 convolution and a
4x pixel shuffle. Spatial context comes from 3x3 convolutions at 1/8 and 1/16 of the
resolution and depthwise 3x3 convolutions in the decoder, where dense 3x3 convolutions
would cost ten times as much. Every nonlinearity is a simplified GDN (one 1x1 convolution):
it keeps the sign, where a ReLU on so few channels loses half the signal (measured: about
0.5 dB worse after 2,500 training steps).

Shapes: ``g_a``: ``(B, 3, H, W)`` -> ``(B, latent, H/16, W/16)``; ``g_s`` the inverse.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from .base import DEFAULT_LAMBDAS, ConfigMixin, GainedLatentModel
from .layers import SimplifiedGDN, conv

#: Two more levels above ``DEFAULT_LAMBDAS``, so the shipped levels reach about 1.5 bpp.
REALTIME_LAMBDAS = (*DEFAULT_LAMBDAS, 0.0932, 0.18)


@dataclass
class RealtimeConfig(ConfigMixin):
    """Architecture of a ``RealtimeModel``.

    ``fine``: channels at 1/4 resolution; ``coarse``: channels at 1/8 resolution;
    ``latent``: latent channels at 1/16; ``lambdas``: one rate-distortion weight per level.
    """

    fine: int = 48
    coarse: int = 96
    latent: int = 96
    lambdas: tuple[float, ...] = field(default_factory=lambda: REALTIME_LAMBDAS)


def _upsample(in_channels: int, out_channels: int) -> nn.Sequential:
    """Depthwise 3x3 context, then a 1x1 convolution to ``4 * out`` and a 2x pixel shuffle."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels),
        nn.Conv2d(in_channels, 4 * out_channels, 1),
        nn.PixelShuffle(2),
    )


def realtime_analysis(fine: int, coarse: int, latent: int) -> nn.Sequential:
    """``(B, 3, H, W)`` -> ``(B, latent, H/16, W/16)``."""
    return nn.Sequential(
        nn.Conv2d(3, fine, kernel_size=4, stride=4),
        SimplifiedGDN(fine),
        conv(fine, coarse, 3, 2),
        SimplifiedGDN(coarse),
        conv(coarse, latent, 3, 2),
    )


def realtime_synthesis(fine: int, coarse: int, latent: int) -> nn.Sequential:
    """``(B, latent, H/16, W/16)`` -> ``(B, 3, H, W)``."""
    return nn.Sequential(
        conv(latent, coarse, 3),
        SimplifiedGDN(coarse, inverse=True),
        _upsample(coarse, coarse),
        SimplifiedGDN(coarse, inverse=True),
        _upsample(coarse, fine),
        SimplifiedGDN(fine, inverse=True),
        nn.Conv2d(fine, 3 * 16, 1),
        nn.PixelShuffle(4),
    )


class RealtimeModel(GainedLatentModel):
    architecture = "realtime"
    stride = 16

    def __init__(self, config: RealtimeConfig) -> None:
        super().__init__(config.latent, config.levels)
        self.config = config
        self.g_a = realtime_analysis(config.fine, config.coarse, config.latent)
        self.g_s = realtime_synthesis(config.fine, config.coarse, config.latent)
