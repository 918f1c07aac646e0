"""Narrowing a realtime-transform model: exact when nothing is dropped, dropped channels'
means folded in exactly, and a checkpoint that ``train --init-from`` takes whole."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from shared.models.layers import SimplifiedGDN
from shared.registry import build_model
from tests.conftest import write_images
from training.__main__ import main
from training.prune import PruneConfig, _load, _narrow_gdn, _narrow_input, narrow, prune
from training.train import initialize_from


@pytest.fixture(scope="module")
def realtime():
    return _load("realtime")


def batches(count=2, size=64):
    generator = torch.Generator().manual_seed(0)
    return [torch.rand(2, 3, size, size, generator=generator) for _ in range(count)]


@torch.no_grad()
def test_keeping_every_channel_changes_nothing(realtime):
    net, config, architecture = realtime
    state, narrowed = narrow(net, config, config["fine"], config["coarse"], batches())
    copy = build_model(architecture, narrowed).eval()
    copy.load_state_dict(state)
    x = batches(1, 96)[0]
    assert torch.equal(copy.g_s(copy.g_a(x)), net.g_s(net.g_a(x)))


@torch.no_grad()
def test_a_dropped_constant_input_is_folded_into_the_bias_exactly():
    torch.manual_seed(0)
    layer = nn.Conv2d(4, 3, 1)
    x = torch.randn(1, 4, 5, 5)
    x[:, 2] = 0.7  # channel 2 is constant: its mean is all it carries
    state = {"c.weight": layer.weight.clone(), "c.bias": layer.bias.clone()}
    keep = torch.tensor([0, 1, 3])
    _narrow_input(state, "c", keep, x.mean(dim=(0, 2, 3)))
    narrowed = nn.functional.conv2d(x[:, keep], state["c.weight"], state["c.bias"])
    torch.testing.assert_close(narrowed, layer(x))


@torch.no_grad()
def test_a_dropped_constant_input_is_folded_into_the_gdn_normaliser_exactly():
    torch.manual_seed(0)
    gdn = SimplifiedGDN(4)
    gdn.gamma_raw.add_(0.3 * torch.rand(4, 4))
    x = torch.randn(1, 4, 5, 5)
    x[:, 1] = -0.4
    state = {"g.beta_raw": gdn.beta_raw.clone(), "g.gamma_raw": gdn.gamma_raw.clone()}
    keep = torch.tensor([0, 2, 3])
    _narrow_gdn(state, "g", keep, x.abs().mean(dim=(0, 2, 3)))
    small = SimplifiedGDN(3)
    small.load_state_dict({"beta_raw": state["g.beta_raw"], "gamma_raw": state["g.gamma_raw"]})
    torch.testing.assert_close(small(x[:, keep]), gdn(x)[:, keep])


def test_the_pruned_checkpoint_initialises_a_narrow_model_whole(tmp_path):
    data = write_images(tmp_path / "train", 4, 96, 96)
    config = PruneConfig(
        model="realtime",
        data=str(data),
        out=str(tmp_path / "p.pt"),
        fine=16,
        coarse=40,
        crops=8,
        crop=64,
    )
    out = prune(config)
    config = {"transforms": "realtime", "fine": 16, "coarse": 40, "latent": 96, "hyper": 32}
    model = build_model("hyperprior", config)
    transforms = [k for k in model.state_dict() if k.startswith(("g_a.", "g_s.", "h_"))]
    assert initialize_from(model, str(out)) >= len(transforms)
    assert model.g_a[0].out_channels == 16 and model.g_a[2].out_channels == 40


def test_prune_cli_refuses_a_model_without_realtime_transforms(tmp_path, capsys):
    data = write_images(tmp_path / "train", 2, 64, 64)
    code = main(["prune", "--model", "fast", "--data", str(data), "--out", str(tmp_path / "x")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "realtime transforms" in err[0]
    assert not (tmp_path / "x").exists()
