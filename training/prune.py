"""Narrow a trained ``realtime``-transform model to fewer channels, as a start for fine-tuning.

``python -m training prune --model realtime --fine 32 --coarse 64 --data DIR --out FILE``
writes a training checkpoint of the same architecture with ``fine`` channels at 1/4
resolution and ``coarse`` at 1/8 (the ``realtime`` transforms' two widths), keeping of each
hidden layer the channels that carry the most signal, then ``python -m training train
--init-from FILE`` fine-tunes it. Narrowing halves the transforms' multiply-adds, which is
what a CPU without native bfloat16 needs to run them at 30 fps with one core per end.

Importance of hidden channel ``j`` of a layer: ``E|a_j| * ||W[:, j]||``, the mean magnitude
of its activation (after the layer's GDN) on training crops times the norm of the weights
that read it. A dropped channel's mean contribution is folded into what remains: into the
next convolution's bias (``sum_k W[:, j, k] * E[a_j]``) and into the GDN normalisers
(``beta_i += gamma_ij * E|x_j|``), so the narrowed network starts close to the original.
Everything else (latent channels, gains, the hyper-analysis) is copied; the hyper-synthesis
is read back from the model file's exact integer network (its weights are the float ones
rounded to ``2**-WEIGHT_BITS``); the hyper-latent density is learned again in fine-tuning.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from shared.modelfile import load_model_file
from shared.models.integer import ACT_BITS, WEIGHT_BITS, IntegerNetwork
from shared.models.layers import SimplifiedGDN
from shared.registry import build_model, resolve_model_path

from .data import CropSampler, list_images, split_train_validation


@dataclass
class PruneConfig:
    """``model``: zoo name or model file with ``realtime`` transforms; ``fine``/``coarse``:
    channels to keep; ``crops``/``crop``: how many training crops of how many pixels the
    channel statistics are measured on."""

    model: str
    data: str
    out: str
    fine: int = 32
    coarse: int = 64
    crops: int = 64
    crop: int = 256
    seed: int = 0


def _load(model: str) -> tuple[nn.Module, dict, str]:
    path, _ = resolve_model_path(model)
    model_file = load_model_file(path)
    config = dict(model_file.config)
    if config.get("transforms") != "realtime" and model_file.architecture != "realtime":
        raise ValueError(f"{model}: only models with realtime transforms can be narrowed")
    net = build_model(model_file.architecture, config)
    state = {k: torch.from_numpy(v) for k, v in model_file.weights.items()}
    net.load_state_dict(state, strict=False)
    if hasattr(net, "h_s"):
        _hyper_synthesis_from_integers(net.h_s, model_file.extras)
    return net.eval(), config, model_file.architecture


def _hyper_synthesis_from_integers(h_s: nn.Sequential, extras: dict) -> None:
    """Float weights of ``h_s`` from the model file's integer network (exact up to the
    rounding at export)."""
    integer = IntegerNetwork.from_tensors(extras, "integer/h_s/")
    convs = [m for m in h_s if isinstance(m, nn.Conv2d)]
    layers = [layer for layer in integer.layers if layer[0] == "conv"]
    if len(convs) != len(layers):
        raise ValueError("integer prior network does not match h_s")
    with torch.no_grad():
        for conv, (_, weight_q, bias_q) in zip(convs, layers, strict=True):
            weight = weight_q.astype(np.float64) / 2**WEIGHT_BITS
            bias = bias_q.astype(np.float64) / 2 ** (WEIGHT_BITS + ACT_BITS)
            conv.weight.copy_(torch.from_numpy(weight))
            conv.bias.copy_(torch.from_numpy(bias))


class _Stats:
    """Per-channel means of ``x`` and ``|x|`` over batch and space, accumulated by hooks."""

    def __init__(self) -> None:
        self.sum = self.abs_sum = None
        self.count = 0

    def add(self, x: torch.Tensor) -> None:
        s, a = x.sum(dim=(0, 2, 3)), x.abs().sum(dim=(0, 2, 3))
        self.sum = s if self.sum is None else self.sum + s
        self.abs_sum = a if self.abs_sum is None else self.abs_sum + a
        self.count += x.shape[0] * x.shape[2] * x.shape[3]

    @property
    def mean(self) -> torch.Tensor:
        return self.sum / self.count

    @property
    def abs_mean(self) -> torch.Tensor:
        return self.abs_sum / self.count


def _measure(net: nn.Module, batches: list[torch.Tensor]) -> dict[str, _Stats]:
    """Statistics of the input and output of every GDN and of every hidden convolution's
    input, keyed by module name, over ``batches`` run through ``g_s(g_a(x))``."""
    stats: dict[str, _Stats] = {}
    hooks = []
    for prefix, seq in (("g_a", net.g_a), ("g_s", net.g_s)):
        for name, module in seq.named_modules():
            if isinstance(module, (nn.Conv2d, SimplifiedGDN)):
                key = f"{prefix}.{name}"
                stats[key + ":in"] = _Stats()
                stats[key + ":out"] = _Stats()

                def hook(mod, inputs, output, key=key):
                    stats[key + ":in"].add(inputs[0])
                    stats[key + ":out"].add(output)

                hooks.append(module.register_forward_hook(hook))
    with torch.no_grad():
        for x in batches:
            net.g_s(net.g_a(x))
    for h in hooks:
        h.remove()
    return stats


def _keep(importance: torch.Tensor, count: int) -> torch.Tensor:
    if not 0 < count <= importance.numel():
        raise ValueError(f"cannot keep {count} of {importance.numel()} channels")
    return torch.sort(torch.topk(importance, count).indices).values


def _narrow_gdn(state: dict, name: str, keep: torch.Tensor, input_abs_mean: torch.Tensor) -> None:
    beta = state[name + ".beta_raw"].square() + 1e-6
    gamma = state[name + ".gamma_raw"].square()
    dropped = torch.ones(beta.numel(), dtype=torch.bool)
    dropped[keep] = False
    beta = beta + gamma[:, dropped] @ input_abs_mean[dropped]
    state[name + ".beta_raw"] = (beta[keep] - 1e-6).clamp_min(0).sqrt()
    state[name + ".gamma_raw"] = state[name + ".gamma_raw"][keep][:, keep]


def _narrow_input(state: dict, name: str, keep: torch.Tensor, input_mean: torch.Tensor) -> None:
    """Keep input channels ``keep`` of convolution ``name`` (not depthwise), folding the
    dropped channels' mean into its bias."""
    weight = state[name + ".weight"]
    dropped = torch.ones(weight.shape[1], dtype=torch.bool)
    dropped[keep] = False
    fold = (weight[:, dropped].sum(dim=(2, 3)) * input_mean[dropped]).sum(dim=1)
    state[name + ".bias"] = state[name + ".bias"] + fold
    state[name + ".weight"] = weight[:, keep]


def _narrow_output(state: dict, name: str, keep: torch.Tensor, shuffle: int = 1) -> None:
    """Keep output channels ``keep`` of convolution ``name``; with a following pixel shuffle
    of ``shuffle``, channel ``c`` is the group ``c * shuffle**2 ...`` of its outputs."""
    group = shuffle * shuffle
    rows = (keep[:, None] * group + torch.arange(group)[None]).reshape(-1)
    state[name + ".weight"] = state[name + ".weight"][rows]
    state[name + ".bias"] = state[name + ".bias"][rows]


def _narrow_upsample(
    state: dict, stats: dict, name: str, keep_in: torch.Tensor, keep_out: torch.Tensor
) -> None:
    """Narrow an upsampling block ``name`` (depthwise 3x3 ``.0``, 1x1 ``.1``, 2x shuffle) to
    inputs ``keep_in`` and outputs ``keep_out``. A dropped depthwise channel feeds only
    itself, so its output's mean goes into the 1x1's bias."""
    for key in (".weight", ".bias"):
        state[f"{name}.0{key}"] = state[f"{name}.0{key}"][keep_in]
    _narrow_input(state, f"{name}.1", keep_in, stats[f"{name}.0:out"].mean)
    _narrow_output(state, f"{name}.1", keep_out, shuffle=2)


def _importance(stats: dict, gdn: str, reader: str, state: dict, depthwise: str | None = None):
    """``E|a_j| * ||W_reader[:, j]||`` for the channels leaving GDN ``gdn``; with a
    depthwise convolution between them, its per-channel weight norm scales the activation."""
    activation = stats[gdn + ":out"].abs_mean
    if depthwise is not None:
        activation = activation * state[depthwise + ".weight"].flatten(1).norm(dim=1)
    weight = state[reader + ".weight"]
    return activation * weight.transpose(0, 1).flatten(1).norm(dim=1)


def narrow(net: nn.Module, config: dict, fine: int, coarse: int, batches: list[torch.Tensor]):
    """The state dict of ``net`` narrowed to ``fine``/``coarse`` channels, and its config."""
    stats = _measure(net, batches)
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    # analysis: conv0 -> GDN1 (fine) -> conv2 -> GDN3 (coarse) -> conv4
    a1 = _keep(_importance(stats, "g_a.1", "g_a.2", state), fine)
    a3 = _keep(_importance(stats, "g_a.3", "g_a.4", state), coarse)
    # synthesis: conv0 -> GDN1 (coarse) -> dw 2.0, 1x1 2.1 (+shuffle) -> GDN3 (coarse)
    # -> dw 4.0, 1x1 4.1 (+shuffle) -> GDN5 (fine) -> 1x1 6
    s1 = _keep(_importance(stats, "g_s.1", "g_s.2.1", state, "g_s.2.0"), coarse)
    s3 = _keep(_importance(stats, "g_s.3", "g_s.4.1", state, "g_s.4.0"), coarse)
    s5 = _keep(_importance(stats, "g_s.5", "g_s.6", state), fine)

    _narrow_output(state, "g_a.0", a1)
    _narrow_gdn(state, "g_a.1", a1, stats["g_a.1:in"].abs_mean)
    _narrow_input(state, "g_a.2", a1, stats["g_a.2:in"].mean)
    _narrow_output(state, "g_a.2", a3)
    _narrow_gdn(state, "g_a.3", a3, stats["g_a.3:in"].abs_mean)
    _narrow_input(state, "g_a.4", a3, stats["g_a.4:in"].mean)

    _narrow_output(state, "g_s.0", s1)
    _narrow_gdn(state, "g_s.1", s1, stats["g_s.1:in"].abs_mean)
    _narrow_upsample(state, stats, "g_s.2", s1, s3)
    _narrow_gdn(state, "g_s.3", s3, stats["g_s.3:in"].abs_mean)
    _narrow_upsample(state, stats, "g_s.4", s3, s5)
    _narrow_gdn(state, "g_s.5", s5, stats["g_s.5:in"].abs_mean)
    _narrow_input(state, "g_s.6", s5, stats["g_s.6:in"].mean)
    return state, dict(config, fine=fine, coarse=coarse)


def prune(config: PruneConfig) -> Path:
    """Write the narrowed model as a checkpoint ``config.out`` for ``train --init-from``."""
    torch.manual_seed(config.seed)  # the hyper-latent density starts from a fresh init
    net, model_config, architecture = _load(config.model)
    files, _ = split_train_validation(list_images(config.data))
    sampler = CropSampler(files, config.crop, seed=config.seed)
    batches = [sampler.batch(8) for _ in range(max(1, config.crops // 8))]
    state, narrowed = narrow(net, model_config, config.fine, config.coarse, batches)
    build_model(architecture, narrowed).load_state_dict(state, strict=True)  # shapes fit
    out = Path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state, "architecture": architecture, "model_config": narrowed}, out)
    return out
