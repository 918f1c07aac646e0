"""Fixed-point inference of a small convolutional network, exact on every device.

The hyperprior's synthesis network decides which probability table codes each latent, so
encoder and decoder must compute it bit-identically, whatever their CPU, GPU, thread count
or BLAS. Floating-point convolutions do not promise that (summation order, FMA, Winograd).
Integers do: the network is exported with weights ``round(w * 2**WEIGHT_BITS)`` and runs on
activations ``round(a * 2**ACT_BITS)``; each layer is

    acc = sum(weight_q * act_q) + bias_q           (exact integer arithmetic)
    act_q' = floor(acc / 2**WEIGHT_BITS)           (back to ACT_BITS fractional bits)

The sums are carried out in float64 matrix products (PyTorch's CPU BLAS), exact here because
every operand and every partial sum is an integer of magnitude below 2**53: inputs are
clipped to ``2**INPUT_LIMIT_BITS``, activations to ``2**ACT_LIMIT_BITS``, weights to
``2**WEIGHT_LIMIT_BITS``, and a layer has at most ``2**FAN_IN_LIMIT_BITS`` terms, with
``ACT_LIMIT_BITS + WEIGHT_LIMIT_BITS + FAN_IN_LIMIT_BITS <= 52``. Integers below 2**53
add and multiply exactly in IEEE doubles in any order, so the result is the same
everywhere.

Supported layers (as exported from an ``nn.Sequential``): ``Conv2d`` with odd kernel,
stride 1, "same" padding; ``ReLU``; ``PixelShuffle``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

WEIGHT_BITS = 12
ACT_BITS = 8
WEIGHT_LIMIT_BITS = 16
ACT_LIMIT_BITS = 26
FAN_IN_LIMIT_BITS = 10
INPUT_LIMIT_BITS = 12  # integer inputs (hyper-latents) are clipped to +-2**12
assert ACT_LIMIT_BITS + WEIGHT_LIMIT_BITS + FAN_IN_LIMIT_BITS <= 52


class IntegerNetwork:
    """A list of layers ``("conv", weight_q, bias_q) | ("relu",) | ("shuffle", factor)``.

    ``weight_q``: ``(C_out, C_in, k, k)`` int32; ``bias_q``: ``(C_out,)`` int64 in units of
    ``2**-(WEIGHT_BITS + ACT_BITS)``.
    """

    def __init__(self, layers: list[tuple]) -> None:
        for layer in layers:
            if layer[0] == "conv":
                weight = layer[1]
                fan_in = weight.shape[1] * weight.shape[2] * weight.shape[3]
                if fan_in > 2**FAN_IN_LIMIT_BITS or weight.shape[2] % 2 == 0:
                    raise ValueError(f"unsupported integer convolution {weight.shape}")
                if np.abs(weight).max(initial=0) >= 2**WEIGHT_LIMIT_BITS:
                    raise ValueError("integer weight outside the exactness bound")
            elif layer[0] not in ("relu", "shuffle"):
                raise ValueError(f"unknown integer layer {layer[0]!r}")
        self.layers = layers

    @classmethod
    def from_sequential(cls, module: nn.Sequential) -> IntegerNetwork:
        """Quantize a float ``nn.Sequential`` of supported layers."""
        layers: list[tuple] = []
        for child in module:
            if isinstance(child, nn.Conv2d):
                if child.stride != (1, 1) or child.padding != (child.kernel_size[0] // 2,) * 2:
                    raise ValueError("only stride-1 'same' convolutions are supported")
                weight = child.weight.detach().double().numpy()
                bias = child.bias.detach().double().numpy()
                weight_q = np.round(weight * 2**WEIGHT_BITS).astype(np.int32)
                bias_q = np.round(bias * 2 ** (WEIGHT_BITS + ACT_BITS)).astype(np.int64)
                layers.append(("conv", weight_q, bias_q))
            elif isinstance(child, nn.ReLU):
                layers.append(("relu",))
            elif isinstance(child, nn.PixelShuffle):
                layers.append(("shuffle", int(child.upscale_factor)))
            else:
                raise ValueError(f"layer {type(child).__name__} has no integer form")
        return cls(layers)

    def to_tensors(self, prefix: str) -> dict[str, np.ndarray]:
        """Arrays for a model file: ``{prefix}{i}.weight/.bias`` and ``{prefix}kinds``."""
        kinds = []
        tensors: dict[str, np.ndarray] = {}
        for i, layer in enumerate(self.layers):
            if layer[0] == "conv":
                kinds.append(0)
                tensors[f"{prefix}{i}.weight"] = layer[1].astype(np.int32)
                tensors[f"{prefix}{i}.bias"] = layer[2].astype(np.int64)
            elif layer[0] == "relu":
                kinds.append(1)
            else:
                kinds.append(100 + layer[1])
        tensors[f"{prefix}kinds"] = np.array(kinds, dtype=np.int32)
        return tensors

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray], prefix: str) -> IntegerNetwork:
        layers: list[tuple] = []
        for i, kind in enumerate(tensors[f"{prefix}kinds"].tolist()):
            if kind == 0:
                weight = tensors[f"{prefix}{i}.weight"]
                bias = tensors[f"{prefix}{i}.bias"]
                if weight.dtype != np.int32 or bias.dtype != np.int64:
                    raise ValueError("integer network tensors have the wrong dtype")
                if bias.shape != (weight.shape[0],):
                    raise ValueError("integer network bias does not match its weight")
                layers.append(("conv", weight, bias))
            elif kind == 1:
                layers.append(("relu",))
            elif 102 <= kind <= 108:
                layers.append(("shuffle", kind - 100))
            else:
                raise ValueError(f"unknown integer layer kind {kind}")
        return cls(layers)

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """Run on integer inputs ``(C, H, W)`` (or a batch ``(N, C, H, W)``); returns
        ``(C', H', W')`` (``(N, C', H', W')``) int64 activations with ``ACT_BITS``
        fractional bits (divide by ``2**ACT_BITS`` for real values). Batch items never mix:
        each is computed exactly as it would be alone."""
        limit = 2**INPUT_LIMIT_BITS
        clipped = np.clip(inputs.astype(np.int64), -limit, limit) * 2**ACT_BITS
        act = torch.from_numpy(clipped.astype(np.float64))
        batched = act.dim() == 4
        if not batched:
            act = act.unsqueeze(0)
        with torch.inference_mode():
            for layer in self.layers:
                if layer[0] == "conv":
                    act = _conv_same_exact(act, layer[1], layer[2])
                elif layer[0] == "relu":
                    act = act.clamp_min(0.0)
                else:
                    act = F.pixel_shuffle(act, layer[1])
        out = act.numpy().astype(np.int64)
        return out if batched else out[0]


def _conv_same_exact(act: torch.Tensor, weight_q: np.ndarray, bias_q: np.ndarray) -> torch.Tensor:
    """One layer on ``(N, C, H, W)`` float64 integer values; im2col (``unfold`` copies values
    exactly) and a float64 matrix product whose every partial sum is an integer < 2**53."""
    batch, channels, height, width = act.shape
    out_channels, in_channels, k, _ = weight_q.shape
    if in_channels != channels:
        raise ValueError(f"integer convolution expects {in_channels} channels, got {channels}")
    columns = F.unfold(act, k, padding=k // 2)  # (N, C * k * k, H * W)
    weight = torch.from_numpy(weight_q.reshape(out_channels, -1).astype(np.float64))
    acc = weight @ columns + torch.from_numpy(bias_q.astype(np.float64)).unsqueeze(1)
    out = torch.floor(acc / 2**WEIGHT_BITS)  # exact: division by a power of two
    limit = float(2**ACT_LIMIT_BITS)
    return out.clamp_(-limit, limit).view(batch, out_channels, height, width)
