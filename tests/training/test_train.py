"""Training runs, resumes, exports a loadable model file, and runs under torchrun (DDP)."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from shared.codec import ImageCodec
from tests.conftest import TINY_CONFIG, natural_like_image
from training.export import export
from training.train import TrainConfig, learning_rate, train


@pytest.fixture
def train_folder(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    for i in range(8):
        image = natural_like_image(80, 96, seed=i)
        cv2.imwrite(str(folder / f"img_{i}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return folder


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
