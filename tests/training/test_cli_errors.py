"""Every command-line mistake of ``python -m training`` is one line on stderr and exit
code 2, found before any training starts, never a traceback."""

from __future__ import annotations

import json

import pytest
import torch

from shared.registry import build_model
from tests.conftest import TINY_CONFIG, assert_one_line_error, run_cli, write_images
from training.__main__ import main
from training.train import TrainConfig, save_checkpoint

TINY = ["--model-config", json.dumps(TINY_CONFIG)]


def run(args: list[str], capsys) -> tuple[int, str]:
    return run_cli(main, args, capsys)


@pytest.fixture
def folder(tmp_path):
    return write_images(tmp_path / "train", 3, 48, 64)


def write_checkpoint(path, architecture: str = "factorized") -> None:
    """A real training checkpoint at step 0, without training."""
    config = TINY_CONFIG if architecture == "factorized" else None
    model = build_model(architecture, config)
    optimizer = torch.optim.Adam(model.parameters())
    settings = TrainConfig(data="data", out=str(path.parent), architecture=architecture)
    save_checkpoint(path, model, optimizer, 0, settings, 0.0)


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--log-every", "0"], "--log-every must be >= 1"),
        (["--checkpoint-every", "0"], "--checkpoint-every must be >= 1"),
        (["--validate-every", "0"], "--validate-every must be >= 1"),
        (["--crop", "0"], "--crop must be >= 1"),
        (["--crop", "24"], "--crop must be a multiple of 16"),
        (["--steps", "-5"], "--steps must be >= 1"),
        (["--batch", "0"], "--batch must be >= 1"),
        (["--decay-from", "2"], "--decay-from is a fraction"),
        (["--device", "gpu"], "--device must be one of auto, cpu, cuda"),
        (["--model-config", "{bad"], "--model-config is not valid JSON"),
        (["--model-config", '{"nosuch": 1}'], "--model-config"),
        (["--architecture", "nosuch"], "--architecture must be one of"),
    ],
)
def test_train_option_mistakes(tmp_path, folder, capsys, extra, fragment):
    args = ["train", "--data", str(folder), "--out", str(tmp_path / "run"), *TINY, *extra]
    assert_one_line_error(*run(args, capsys), fragment)
    assert not (tmp_path / "run" / "log.jsonl").exists()


def test_train_on_cuda_without_a_gpu(tmp_path, folder, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = ["train", "--data", str(folder), "--out", str(tmp_path / "run"), "--device", "cuda"]
    assert_one_line_error(*run(args, capsys), "--device cuda")


@pytest.mark.parametrize("command", ["train", "inpaint", "inpaint-gate"])
def test_out_that_is_a_file_and_data_that_is_a_file(tmp_path, folder, capsys, command):
    a_file = folder / "img_0.png"
    code, err = run([command, "--data", str(folder), "--out", str(a_file)], capsys)
    assert_one_line_error(code, err, "--out", "is a file, not a folder")
    code, err = run([command, "--data", str(a_file), "--out", str(tmp_path / "o")], capsys)
    assert_one_line_error(code, err, "training: error:", "is a file, not a folder")


@pytest.mark.parametrize(
    "command, extra, fragment",
    [
        ("inpaint", ["--crop", "0"], "--crop must be >= 32"),
        ("inpaint", ["--log-every", "0"], "--log-every must be >= 1"),
        ("inpaint", ["--validate-every", "0"], "--validate-every must be >= 1"),
        ("inpaint-gate", ["--crop", "0"], "--crop must be >= 32"),
    ],
)
def test_inpaint_option_mistakes(tmp_path, folder, capsys, command, extra, fragment):
    args = [command, "--data", str(folder), "--out", str(tmp_path / "run"), *extra]
    assert_one_line_error(*run(args, capsys), fragment)


def test_resuming_another_architecture_is_refused(tmp_path, folder, capsys):
    out = tmp_path / "run"
    out.mkdir()
    write_checkpoint(out / "checkpoint.pt", "factorized")
    args = ["train", "--data", str(folder), "--out", str(out), "--architecture", "hyperprior"]
    assert_one_line_error(*run(args, capsys), "--architecture factorized", "not hyperprior")
    code, err = run(["inpaint", "--data", str(folder), "--out", str(out)], capsys)
    assert_one_line_error(code, err, "factorized codec")
    # The same architecture with another --model-config than the checkpoint's.
    args = ["train", "--data", str(folder), "--out", str(out), "--model-config", "{}"]
    assert_one_line_error(*run(args, capsys), "holds a checkpoint with --model-config")


def test_export_mistakes(tmp_path, capsys, tiny_model_path):
    checkpoint = tmp_path / "checkpoint.pt"
    write_checkpoint(checkpoint)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x89PNG not a checkpoint" * 50)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(checkpoint.read_bytes()[:2000])
    model_out = str(tmp_path / "m.safetensors")
    cases = [
        (["export", "--checkpoint", str(garbage), "--out", model_out], "cannot read checkpoint"),
        (["export", "--checkpoint", str(truncated), "--out", model_out], "cannot read"),
        (["export", "--checkpoint", str(tmp_path), "--out", model_out], "--checkpoint"),
        (["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path)], "--out"),
        (["inpaint-export", "--checkpoint", str(checkpoint), "--out", str(tmp_path)], "--out"),
        (["inpaint-export", "--checkpoint", str(checkpoint), "--out", model_out], "export"),
        (["export", "--checkpoint", str(tiny_model_path), "--out", model_out], "a model file"),
    ]
    for args, fragment in cases:
        assert_one_line_error(*run(args, capsys), fragment)
    assert not (tmp_path / "m.safetensors").exists()
