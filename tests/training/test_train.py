"""Training runs, resumes, exports a loadable model file, and runs under torchrun (DDP)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from shared.codec import ImageCodec
from tests.conftest import TINY_CONFIG, natural_like_image, write_images
from training.export import export
from training.train import TrainConfig, corrupt, learning_rate, train


@pytest.fixture
def train_folder(tmp_path):
    return write_images(tmp_path / "train", 8, 80, 96)


def small_config(data, out, steps) -> TrainConfig:
    return TrainConfig(
        data=str(data),
        out=str(out),
        model_config=json.dumps(TINY_CONFIG),
        steps=steps,
        batch=2,
        crop=32,
        checkpoint_every=2,
        validate_every=3,
        log_every=1,
        validation_crop=64,
        threads=1,
    )


def test_train_resume_export_and_load(tmp_path, train_folder):
    out = tmp_path / "run"
    checkpoint = train(small_config(train_folder, out, steps=3))
    assert checkpoint.exists()
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2, 3]
    assert any(r["kind"] == "validation" for r in rows)
    assert (out / "curves.png").exists()

    train(small_config(train_folder, out, steps=5))  # resumes at step 3
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2, 3, 4, 5]

    model_path = tmp_path / "model.safetensors"
    export(checkpoint, model_path)
    codec = ImageCodec.load(str(model_path))
    assert codec.levels == len(TINY_CONFIG["lambdas"])
    image = natural_like_image(40, 56)
    assert codec.decompress(codec.compress(image, 0)).shape == image.shape


def test_learning_rate_schedule_decays_to_final():
    config = TrainConfig(data="x", out="y", steps=100, lr=1e-3, final_lr=1e-5, decay_from=0.5)
    assert learning_rate(config, 0) == 1e-3 and learning_rate(config, 49) == 1e-3
    assert learning_rate(config, 75) < 1e-3
    assert learning_rate(config, 100) == pytest.approx(1e-5)


def test_torchrun_two_cpu_processes(tmp_path, train_folder, subprocess_env):
    out = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "training",
        "train",
        "--data",
        str(train_folder),
        "--out",
        str(out),
        "--model-config",
        json.dumps(TINY_CONFIG),
        "--steps",
        "3",
        "--batch",
        "2",
        "--crop",
        "32",
        "--checkpoint-every",
        "3",
        "--validate-every",
        "3",
        "--log-every",
        "1",
        "--threads",
        "1",
        "--validation-crop",
        "64",
    ]
    result = subprocess.run(
        command, env=subprocess_env, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert rows[0]["kind"] == "start" and rows[0]["world_size"] == 2
    assert (out / "checkpoint.pt").exists()
    assert np.isfinite([r["loss"] for r in rows if r["kind"] == "train"]).all()


def test_corrupt_adds_clipped_noise_per_image_and_dropout():
    torch.manual_seed(0)
    clean = torch.rand(4, 3, 32, 32)
    assert corrupt(clean, 0.0) is clean
    noisy = corrupt(clean, 0.12, generator=torch.Generator().manual_seed(1))
    assert noisy.shape == clean.shape and 0.0 <= noisy.min() and noisy.max() <= 1.0
    spread = (noisy - clean).flatten(1).std(dim=1)
    assert (spread > 0).all() and (spread < 0.12).all()
    assert len(set(spread.round(decimals=3).tolist())) == 4  # one sigma per image
    dropped = corrupt(clean, 0.0, dropout=0.5, generator=torch.Generator().manual_seed(2))
    zero = (dropped == 0).all(dim=1)
    assert 0.4 < zero.float().mean() < 0.6
    assert torch.equal(dropped[:, :, ~zero[0]][0], clean[:, :, ~zero[0]][0])


def test_corrupt_draws_each_sigma_from_the_given_range(tmp_path):
    clean = torch.full((64, 3, 32, 32), 0.5)  # mid-gray: no clipping
    noisy = corrupt(clean, 0.12, generator=torch.Generator().manual_seed(3), noise_sigma_min=0.08)
    spread = (noisy - clean).flatten(1).std(dim=1)
    assert 0.075 < spread.min() and spread.max() < 0.125
    same = corrupt(clean, 0.12, generator=torch.Generator().manual_seed(3))
    assert torch.equal(same, corrupt(clean, 0.12, 0.0, torch.Generator().manual_seed(3), 0.0))
    with pytest.raises(ValueError, match="noise-sigma-min"):
        TrainConfig(data="x", out=str(tmp_path / "o"), noise_sigma=0.05, noise_sigma_min=0.1)


def test_noise_goes_to_the_input_and_the_loss_sees_the_clean_crop(
    tmp_path, train_folder, monkeypatch
):
    import training.train as training_module

    seen = {"inputs": [], "targets": []}
    build = training_module.build_model

    def recording_build(*args, **kwargs):
        model = build(*args, **kwargs)
        forward = model.forward

        def recording_forward(image, level):
            seen["inputs"].append(image.detach().clone())
            return forward(image, level)

        model.forward = recording_forward
        return model

    rd_terms = training_module.rd_terms

    def recording_rd_terms(output, image, lam):
        seen["targets"].append(image.detach().clone())
        return rd_terms(output, image, lam)

    monkeypatch.setattr(training_module, "build_model", recording_build)
    monkeypatch.setattr(training_module, "rd_terms", recording_rd_terms)
    config = small_config(train_folder, tmp_path / "noisy", steps=3)
    config.noise_sigma, config.validate_every = 0.1, 100
    train(config)

    assert len(seen["inputs"]) == len(seen["targets"]) == 3
    for inputs, target in zip(seen["inputs"], seen["targets"], strict=True):
        # Clean crops come from 8-bit images: exact multiples of 1/255; noisy inputs are not.
        assert torch.allclose(target * 255, torch.round(target * 255), atol=1e-4)
        assert not torch.allclose(inputs * 255, torch.round(inputs * 255), atol=1e-4)
        assert 0.0 < (inputs - target).abs().mean() < 0.1
    log = (tmp_path / "noisy" / "log.jsonl").read_text()
    rows = [json.loads(line) for line in log.splitlines()]
    assert rows[0]["config"]["noise_sigma"] == 0.1
    assert np.isfinite([r["loss"] for r in rows if r["kind"] == "train"]).all()


def test_the_same_seed_trains_the_same_weights(tmp_path, train_folder):
    """--seed makes a run reproducible (crops, flips, noise and levels)."""
    first = torch.load(train(small_config(train_folder, tmp_path / "a", steps=3)))["model"]
    time.sleep(1.0)  # a second apart: a seed taken from the clock would differ
    again = torch.load(train(small_config(train_folder, tmp_path / "b", steps=3)))["model"]
    assert first.keys() == again.keys()
    for name in first:
        assert torch.equal(first[name], again[name]), name
