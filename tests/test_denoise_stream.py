"""``--denoise`` on the sender and a receiver that follows a stream onto a zoo model."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest

from benchmarks.denoise import add_noise
from receiver.app import Receiver
from receiver.stats import StreamStats
from sender import app
from sender.app import SenderConfig, matches_noise, model_name, run_sender
from shared.codec import ImageCodec, default_model
from shared.noise import NoiseSettings, NoiseWatch
from shared.registry import DENOISE_MODEL, STRONG_DENOISE_MODEL, ZOO, zoo_name_for_hash
from tests.conftest import natural_like_image
from tests.receiver.test_receiver import frame_parts
from tests.test_end_to_end import free_port, run_pair


def write_frames(folder, sigmas, height=144, width=176):
    """One PNG per entry of ``sigmas``: a test image with the benchmark's Gaussian noise of
    that deviation (fraction of the range), named in order."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, sigma in enumerate(sigmas):
        rgb = add_noise(natural_like_image(height, width, seed=i), sigma, [5, i])
        cv2.imwrite(str(folder / f"frame_{i:03d}.png"), rgb[:, :, ::-1])
    return folder


def test_denoise_is_shorthand_for_the_denoise_zoo_model():
    assert DENOISE_MODEL in ZOO
    assert model_name(SenderConfig()) == default_model()
    assert model_name(SenderConfig(model="realtime")) == "realtime"
    assert model_name(SenderConfig(denoise=True)) == DENOISE_MODEL
    assert model_name(SenderConfig(denoise=True, model=DENOISE_MODEL)) == DENOISE_MODEL
    assert model_name(SenderConfig(denoise=True, model="denoise-realtime")) == "denoise-realtime"
    with pytest.raises(ValueError, match="--denoise takes a denoising zoo model"):
        model_name(SenderConfig(denoise=True, model="fast"))


def test_only_denoise_alone_matches_the_model_to_the_noise():
    assert matches_noise(SenderConfig(denoise=True))
    assert not matches_noise(SenderConfig(denoise=True, model=DENOISE_MODEL))
    assert not matches_noise(SenderConfig(denoise=True, model=STRONG_DENOISE_MODEL))
    assert not matches_noise(SenderConfig())
    assert (
        model_name(SenderConfig(denoise=True, model=STRONG_DENOISE_MODEL)) == STRONG_DENOISE_MODEL
    )


def test_the_sender_moves_to_the_strong_noise_model_when_the_noise_grows(
    tmp_path, monkeypatch, capsys
):
    # Every frame measured and the last one deciding, so that six frames show a switch.
    monkeypatch.setattr(app, "NoiseWatch", lambda: NoiseWatch(NoiseSettings(every=1, window=1)))
    frames = write_frames(tmp_path / "frames", [0.0, 0.0, 0.1, 0.1, 0.1, 0.1])
    config = SenderConfig(
        source=str(frames),
        bind=f"tcp://127.0.0.1:{free_port()}",
        denoise=True,
        quality=2,
        keyframe_interval=100,
        warmup=0.0,
        feedback="off",
        threads=1,
    )
    summary = run_sender(config)
    assert summary["frames_by_model"] == {DENOISE_MODEL: 2, STRONG_DENOISE_MODEL: 4}
    assert summary["model_hash"] == ZOO[STRONG_DENOISE_MODEL][1][:16]
    assert summary["key_frames"] == 2  # the first frame, and the first of the new model
    assert summary["noise_sigma"] == pytest.approx(0.1, abs=0.01)
    out = capsys.readouterr().out
    assert "or denoise-strong by the frames' noise" in out
    assert out.count("coding with model") == 1 and "coding with model denoise-strong" in out


def test_zoo_names_by_wire_hash():
    for name, (_, pin) in ZOO.items():
        assert zoo_name_for_hash(pin[:16]) == name
    assert zoo_name_for_hash("f" * 16) is None and zoo_name_for_hash("") is None


def test_receiver_switches_to_the_zoo_model_a_frame_names(tiny_model_path):
    logs = []
    tiny = ImageCodec.load(str(tiny_model_path))
    receiver = Receiver(tiny, StreamStats(), log=logs.append)
    denoise = ImageCodec.load(DENOISE_MODEL)
    image = natural_like_image(48, 64)
    for seq in range(2):
        receiver.handle(frame_parts(denoise, image, seq), 100, 0.0)
    assert not receiver.stats.rejected and len(receiver.stats.records) == 2
    assert receiver.codec.model_hash == denoise.model_hash
    assert sum("switched" in line for line in logs) == 1  # loaded once
    receiver.handle(frame_parts(tiny, image, 2), 100, 0.0)  # and back, without reloading
    assert receiver.codec is tiny and len(receiver.stats.records) == 3


def test_a_denoise_stream_decodes_at_a_default_receiver(tmp_path, image_folder, subprocess_env):
    out, sender_out, _, receiver_err = run_pair(
        tmp_path,
        subprocess_env,
        ["--source", str(image_folder), "--denoise", "--fps", "20", "--quality", "2"],
        [],  # the receiver starts with the default model
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 6 and summary["rejected"] == {}
    assert summary["model_hash"] == ZOO[DENOISE_MODEL][1][:16]
    assert summary["psnr_db"] > 25
    assert "model denoise" in sender_out and "switched" in receiver_err


def test_a_strongly_noisy_stream_starts_with_the_strong_model_and_a_receiver_follows(
    tmp_path, subprocess_env
):
    frames = write_frames(tmp_path / "frames", [0.1] * 4)
    out, sender_out, _, receiver_err = run_pair(
        tmp_path, subprocess_env, ["--source", str(frames), "--denoise", "--fps", "20"], []
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 4 and summary["rejected"] == {}
    assert summary["model_hash"] == ZOO[STRONG_DENOISE_MODEL][1][:16]
    assert "coding with model denoise-strong" in sender_out
    assert "'denoise-strong'; switched" in receiver_err


def test_denoise_with_another_model_is_a_cli_mistake(subprocess_env):
    result = subprocess.run(
        [sys.executable, "-m", "sender", "--denoise", "--model", "realtime"],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--denoise takes a denoising zoo model" in result.stderr
    assert "Traceback" not in result.stderr
