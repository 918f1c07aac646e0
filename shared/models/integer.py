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

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

WEIGHT_BITS = 12
ACT_BITS = 8
WEIGHT_LIMIT_BITS = 16
ACT_LIMIT_BITS = 26
FAN_IN_LIMIT_BITS = 10
INPUT_LIMIT_BITS = 12  # integer inputs (hyper-latents) are clipped to +-2**12
BIAS_LIMIT_BITS = 51  # leaves room in the 2**53 for the products and an OutputHead's offset
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
                bias, bound = layer[2].astype(np.int64), 2**BIAS_LIMIT_BITS
                if bias.size and not -bound < bias.min() <= bias.max() < bound:
                    raise ValueError("integer bias outside the exactness bound")
            elif layer[0] not in ("relu", "shuffle"):
                raise ValueError(f"unknown integer layer {layer[0]!r}")
        self.layers = layers
        # float64 copies of the weights, made once: exact, since they are integers < 2**53.
        self._matrices = {
            i: (
                torch.from_numpy(layer[1].reshape(layer[1].shape[0], -1).astype(np.float64)),
                torch.from_numpy(layer[2].astype(np.float64)[:, None]),
            )
            for i, layer in enumerate(layers)
            if layer[0] == "conv"
        }
        # run_tiles batches the windows through the last convolution wider than 1x1; the
        # layers from here on act per position.
        spatial = [i for i, layer in enumerate(layers) if layer[0] == "conv"]
        spatial = [i for i in spatial if layers[i][1].shape[2] > 1]
        self._per_position_from = spatial[-1] + 1 if spatial else 0
        # Dense maps of convolutions over inputs smaller than their kernel, by (layer,
        # height, width); built on first use.
        self._small_maps: dict[tuple[int, int, int], tuple[torch.Tensor, torch.Tensor]] = {}

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
        batched = inputs.ndim == 4
        out = self.run_planar(inputs if batched else inputs[None])
        out = out.transpose(1, 0, 2, 3).astype(np.int64)
        return out if batched else out[0]

    @property
    def final_shuffle(self) -> int:
        """The factor of a ``PixelShuffle`` that ends the network, 1 when none does."""
        return self.layers[-1][1] if self.layers and self.layers[-1][0] == "shuffle" else 1

    def run_planar(
        self, inputs: np.ndarray, final_shuffle: bool = True, head: OutputHead | None = None
    ) -> np.ndarray:
        """``run`` on a batch ``(N, C, H, W)``, returning the activations as ``float64``
        holding integers, in the planar layout ``(C', N, H', W')`` the layers compute in
        (one matrix product per layer for the whole batch). With ``final_shuffle=False``
        a ``PixelShuffle`` that ends the network is left out (the caller applies
        ``pixel_shuffle`` later, e.g. to a smaller dtype). ``head``: see ``OutputHead``."""
        act = _fixed_point_inputs(inputs).transpose(1, 0, 2, 3)
        return self._run_layers(act, 0, self._end(final_shuffle), head)

    def run_tiles(
        self,
        inputs: np.ndarray,
        tile: int,
        final_shuffle: bool = True,
        head: OutputHead | None = None,
    ) -> np.ndarray:
        """The network on every ``tile x tile`` window of ``inputs`` ``(C, H, W)`` (``H``
        and ``W`` multiples of ``tile``) on its own, the windows' outputs placed side by
        side: ``(C', 1, H', W')`` float64 integers, the values ``run_planar`` gives for
        the windows as a batch. The layers up to the last convolution wider than 1x1 run
        on the batch of windows; the rest only act per position (1x1 convolutions, ReLU,
        ``PixelShuffle``), so they run on the assembled grid, with no copy per window.
        ``final_shuffle`` and ``head`` as in ``run_planar``."""
        channels, height, width = inputs.shape
        if height % tile or width % tile:
            raise ValueError(f"a {height}x{width} grid is not made of {tile}x{tile} windows")
        rows, cols = height // tile, width // tile
        windows = inputs.reshape(channels, rows, tile, cols, tile).transpose(0, 1, 3, 2, 4)
        act = _fixed_point_inputs(windows.reshape(channels, rows * cols, tile, tile))
        split = self._per_position_from
        act = self._run_layers(act, 0, split, head)
        out_channels, _, out_rows, out_cols = act.shape
        grid = act.reshape(out_channels, rows, cols, out_rows, out_cols).transpose(0, 1, 3, 2, 4)
        act = np.ascontiguousarray(grid).reshape(out_channels, 1, rows * out_rows, -1)
        return self._run_layers(act, split, self._end(final_shuffle), head)

    def _end(self, final_shuffle: bool) -> int:
        """How many layers run: all, or all but a final ``PixelShuffle``."""
        return len(self.layers) - (not final_shuffle and self.final_shuffle != 1)

    def _run_layers(
        self, act: np.ndarray, start: int, end: int, head: OutputHead | None = None
    ) -> np.ndarray:
        """Layers ``start .. end - 1`` on ``(C, N, H, W)`` float64 integers; ``act`` must
        be the caller's own array (ReLU works in place). ``head`` acts on the last
        convolution if it is among them."""
        last_conv = self._last_conv(head)
        for i in range(start, end):
            layer = self.layers[i]
            if layer[0] == "conv":
                act = self._conv(i, act, head if i == last_conv else None)
            elif layer[0] == "relu":
                act = np.maximum(act, 0.0, out=act)
            else:
                act = pixel_shuffle(act, layer[1])
        return act

    def _last_conv(self, head: OutputHead | None) -> int:
        """Index of the last convolution (-1 without a ``head``), checking that only
        ``PixelShuffle`` follows it, so that ``head`` acts on the network's output."""
        if head is None:
            return -1
        last = max(i for i, layer in enumerate(self.layers) if layer[0] == "conv")
        if any(layer[0] != "shuffle" for layer in self.layers[last + 1 :]):
            raise ValueError("an output head needs a network that ends in a convolution")
        if head.offset.shape != (self.layers[last][1].shape[0],):
            raise ValueError("output head offset does not match the last convolution")
        return last

    def _conv(self, index: int, act: np.ndarray, head: OutputHead | None = None) -> np.ndarray:
        """Layer ``index`` (a convolution) on ``(C, N, H, W)``; see ``_conv_same_exact``
        and ``_conv_small_exact``, which compute the same integers; ``head``: see
        ``OutputHead``."""
        kernel = self.layers[index][1].shape[2]
        height, width = act.shape[2:]
        if height * width >= kernel * kernel:
            weight, bias = self._matrices[index]
            return _conv_same_exact(act, kernel, weight, *_with_head(bias, head, 1))
        key = (index, height, width)
        if key not in self._small_maps:
            weight_q, bias_q = self.layers[index][1:]
            self._small_maps[key] = _dense_map(weight_q, bias_q, height, width)
        dense, bias = self._small_maps[key]
        return _conv_small_exact(act, dense, *_with_head(bias, head, height * width))


@dataclass(frozen=True, eq=False)
class OutputHead:
    """An exact affine step fused into a network's last convolution (which only
    ``PixelShuffle`` may follow): the integer ``offset`` ``(C_out,)`` (``ACT_BITS`` fixed
    point) is added to each output channel, and the result is clamped to ``[low, high]``
    instead of ``+-2**ACT_LIMIT_BITS``.

    The output equals ``clip(run(...) + offset, low, high)`` whenever ``|offset|``,
    ``|low|`` and ``|high|`` are below ``2**(ACT_LIMIT_BITS - 1)`` (checked here): the
    offset enters the integer sum as ``offset * 2**WEIGHT_BITS`` (below ``2**37``; with
    the products below ``2**52`` and biases below ``2**BIAS_LIMIT_BITS``, the sum stays
    below ``2**53``, exact), so the ``floor`` shifts by exactly ``offset``; and the wider
    clamp it replaces only acts on values that the narrow one maps to ``low`` or ``high``
    anyway. It saves passes over the output: the prior network
    adds the level's log gain and clips to the table indices' range this way."""

    offset: np.ndarray
    low: int
    high: int

    def __post_init__(self) -> None:
        bound = 2 ** (ACT_LIMIT_BITS - 1)
        offset = np.array(self.offset, dtype=np.int64)  # a copy: frozen means frozen
        if offset.size and not -bound < offset.min() <= offset.max() < bound:
            raise ValueError("output head offset outside the exactness bound")
        object.__setattr__(self, "offset", offset)
        if not -bound < self.low <= self.high < bound:
            raise ValueError("output head range outside the exactness bound")


def _with_head(
    bias: torch.Tensor, head: OutputHead | None, positions: int
) -> tuple[torch.Tensor, float, float]:
    """A convolution's float64 bias with ``head``'s offset folded in (exact: integers
    < 2**53; each channel's offset repeated ``positions`` times, as a dense map's bias
    repeats it), and the clamp range of its output."""
    if head is None:
        limit = float(2**ACT_LIMIT_BITS)
        return bias, -limit, limit
    offset = np.repeat(head.offset.astype(np.float64), positions) * 2.0**WEIGHT_BITS
    return bias + torch.from_numpy(offset.reshape(bias.shape)), float(head.low), float(head.high)


def _dense_map(
    weight_q: np.ndarray, bias_q: np.ndarray, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The "same" convolution with ``weight_q`` ``(C_out, C, k, k)`` over ``height x
    width`` inputs as one matrix, transposed: ``(C * H * W, C_out * H * W)``, float64, and
    its bias ``(1, C_out * H * W)``: entry ``((c, v, u), (o, y, x))`` is the kernel tap
    that output ``(y, x)`` applies to input ``(v, u)`` (zero where the tap falls outside
    the kernel). The nonzero entries of a column are exactly the taps of that output that
    touch the input (the others only ever meet zero padding), so the sums are the same
    integers."""
    out_channels, channels, kernel, _ = weight_q.shape
    pad = kernel // 2
    dense = np.zeros((channels, height, width, out_channels, height, width))
    for y in range(height):
        for x in range(width):
            for v in range(max(0, y - pad), min(height, y + pad + 1)):
                for u in range(max(0, x - pad), min(width, x + pad + 1)):
                    dense[:, v, u, :, y, x] = weight_q[:, :, v - y + pad, u - x + pad].T
    bias = np.repeat(bias_q.astype(np.float64), height * width)[None, :]
    columns = out_channels * height * width
    return torch.from_numpy(dense.reshape(-1, columns)), torch.from_numpy(bias)


def _conv_small_exact(
    act: np.ndarray, dense: torch.Tensor, bias: torch.Tensor, low: float, high: float
) -> np.ndarray:
    """``_conv_same_exact`` for inputs with fewer positions than the kernel has taps (the
    prior network's 2x2 hyper-latent tiles under 3x3 kernels): one float64 product with
    the layer's transposed dense map (``_dense_map``) per batch, ``(N, C * H * W) @
    (C * H * W, C_out * H * W)``, which skips the products with zero padding (for 2x2
    inputs and 3x3 kernels 4/9 of im2col's work, no im2col copy). In this orientation
    (the batch as the product's rows) the product takes half the time of its transpose
    here. Exact for the same reason: integer operands and partial sums < 2**53. The result
    is clamped to ``[low, high]``. Returns ``(C_out, N, H, W)`` (a view of a batch-major
    array, which the next small convolution reads without a copy)."""
    channels, batch, height, width = act.shape
    if dense.shape[0] != channels * height * width:
        raise ValueError("integer convolution got the wrong number of channels")
    rows = np.ascontiguousarray(act.transpose(1, 0, 2, 3)).reshape(batch, -1)
    with torch.inference_mode():
        acc = torch.addmm(bias, torch.from_numpy(rows), dense)
        acc.mul_(2.0**-WEIGHT_BITS).floor_().clamp_(low, high)
    out_channels = dense.shape[1] // (height * width)
    return acc.numpy().reshape(batch, out_channels, height, width).transpose(1, 0, 2, 3)


def _conv_same_exact(
    act: np.ndarray, kernel: int, weight: torch.Tensor, bias: torch.Tensor, low: float, high: float
) -> np.ndarray:
    """One stride-1 "same" convolution on ``(C, N, H, W)`` float64 integer values: im2col
    (copies values exactly; none for 1x1) and one float64 matrix product for the batch,
    ``(C_out, C * k * k) @ (C * k * k, N * H * W)``, whose every partial sum is an integer
    < 2**53, so any summation order gives the same result. ``weight``:
    ``(C_out, C * k * k)``, ``bias``: ``(C_out, 1)``, float64 tensors. The result is
    clamped to ``[low, high]``. Returns ``(C_out, N, H, W)``."""
    channels, batch, height, width = act.shape
    if weight.shape[1] != channels * kernel * kernel:
        raise ValueError(
            f"integer convolution expects {weight.shape[1] // kernel**2} channels, got {channels}"
        )
    if kernel == 1:
        columns = np.ascontiguousarray(act.reshape(channels, -1))
    else:
        columns = _im2col(act, kernel).reshape(weight.shape[1], -1)
    # The product runs in PyTorch, whose thread count the codec sets (NumPy's BLAS would
    # start threads of its own); the rescaling is in place (multiplying by 2**-WEIGHT_BITS
    # is exact, as is the floor).
    with torch.inference_mode():
        acc = torch.addmm(bias, weight, torch.from_numpy(columns))
        acc.mul_(2.0**-WEIGHT_BITS).floor_().clamp_(low, high)
    return acc.numpy().reshape(weight.shape[0], batch, height, width)


def _im2col(act: np.ndarray, kernel: int) -> np.ndarray:
    """``(C, k, k, N, H, W)`` windows of a "same" (zero-padded) convolution over ``(C, N,
    H, W)``: one shifted copy per kernel offset (faster than padding and a strided view for
    the small prior tiles), values copied exactly."""
    channels, batch, height, width = act.shape
    pad = kernel // 2
    columns = np.zeros((channels, kernel, kernel, batch, height, width))
    for dy in range(kernel):
        # Output row y reads input row y + dy - pad; rows outside the input stay zero.
        top, bottom = max(0, pad - dy), min(height, height + pad - dy)
        for dx in range(kernel):
            left, right = max(0, pad - dx), min(width, width + pad - dx)
            columns[:, dy, dx, :, top:bottom, left:right] = act[
                :, :, top + dy - pad : bottom + dy - pad, left + dx - pad : right + dx - pad
            ]
    return columns


def _fixed_point_inputs(inputs: np.ndarray) -> np.ndarray:
    """Integer inputs clipped to ``2**INPUT_LIMIT_BITS``, in ``ACT_BITS`` fixed point, as a
    new float64 array of the same shape."""
    limit = 2**INPUT_LIMIT_BITS
    return (np.clip(inputs.astype(np.int64), -limit, limit) * 2**ACT_BITS).astype(np.float64)


def pixel_shuffle(act: np.ndarray, factor: int, out: np.ndarray | None = None) -> np.ndarray:
    """``torch.nn.PixelShuffle`` on ``(C * r * r, N, H, W)`` -> ``(C, N, H * r, W * r)``,
    any dtype: one strided copy per sub-position (much faster in NumPy than one
    transposed copy, whose innermost run would be ``r`` elements long). With ``out``
    ``(C, N, h, w)``, ``h <= H * r`` and ``w <= W * r``, the result is cropped to it and
    cast to its dtype, written there (no copy of the rows and columns the crop drops)
    and returned."""
    channels, batch, height, width = act.shape
    out_channels = channels // (factor * factor)
    grid = act.reshape(out_channels, factor, factor, batch, height, width)
    if out is None:
        out = np.empty((out_channels, batch, height * factor, width * factor), dtype=act.dtype)
    out_height, out_width = out.shape[2:]
    for i in range(factor):
        rows = len(range(i, out_height, factor))
        for j in range(factor):
            cols = len(range(j, out_width, factor))
            out[:, :, i::factor, j::factor] = grid[:, i, j, :, :rows, :cols]
    return out
