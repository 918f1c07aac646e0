"""Fixtures shared by the test suite: a tiny model file and synthetic images."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shared.entropy.tables import tables_from_cdf  # noqa: E402
from shared.modelfile import save_model_file  # noqa: E402
from shared.registry import build_model  # noqa: E402

torch.set_num_threads(1)
# A shell without job control starts background jobs (`nohup make test &`) with SIGINT
# ignored, and Python then keeps it ignored, in this process and in every child: the Ctrl-C
# tests would see nothing arrive. A caught signal is reset to the default in children, so
# catching it here gives the processes the tests start their usual KeyboardInterrupt too.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
TINY_CONFIG = {"hidden": 8, "latent": 8, "lambdas": [0.002, 0.01, 0.05]}


def make_model_file(path: Path, seed: int = 0, config: dict | None = None) -> Path:
    """An untrained but complete model file (random weights, tables from its density)."""
    torch.manual_seed(seed)
    model = build_model("factorized", config or TINY_CONFIG).eval()
    radius = 64
    tables = tables_from_cdf(
        lambda level: model.density_cdf(level, radius).numpy(),
        levels=model.config.levels,
        channels=model.config.latent,
        search_radius=radius,
    )
    weights = {
        k: v.detach().numpy() for k, v in model.state_dict().items() if not k.startswith("density.")
    }
    save_model_file(path, "factorized", model.config.to_dict(), weights, tables, {"test": True})
    return path


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    return make_model_file(tmp_path_factory.mktemp("models") / "tiny.safetensors")


def natural_like_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth ``(H, W, 3)`` uint8 RGB test image with edges and texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack(
        [128 + 100 * np.sin(x / (7 + 3 * c) + c) * np.cos(y / (11 + 2 * c)) for c in range(3)],
        axis=2,
    )
    image[height // 3 : height // 2, width // 4 : width // 2] = rng.integers(0, 255, 3)
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_images(
    folder: Path, count: int, height: int, width: int, name: str = "img_{i}.png"
) -> Path:
    """``count`` PNG files of ``natural_like_image`` (seeds 0..count-1) in ``folder``
    (created), named by ``name.format(i=seed)``; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        rgb = natural_like_image(height, width, seed=i)
        cv2.imwrite(str(folder / name.format(i=i)), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return folder


@pytest.fixture
def image_folder(tmp_path) -> Path:
    return write_images(tmp_path / "images", 6, 144, 176, "frame_{i:03d}.png")


@pytest.fixture(scope="session")
def subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.fixture
def keys(tmp_path) -> Path:
    """CURVE key pairs ``sender``, ``listed`` (in ``allowed/``) and ``stranger`` (not)."""
    from shared.security import generate_keypair

    generate_keypair(tmp_path, "sender")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    public, _ = generate_keypair(tmp_path, "listed")
    (allowed / public.name).write_bytes(public.read_bytes())
    generate_keypair(tmp_path, "stranger")
    return tmp_path


def write_pan_clip(
    folder: Path, frames: int, fps: float = 25, scene_width: int = 160, seed: int = 5
) -> Path:
    """``folder/pan.avi`` (lossless FFV1): ``frames`` 128x96 frames panning one pixel per
    frame over a textured scene; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    scene = natural_like_image(96, scene_width, seed=seed)
    writer = cv2.VideoWriter(
        str(folder / "pan.avi"), cv2.VideoWriter_fourcc(*"FFV1"), fps, (128, 96)
    )
    for i in range(frames):
        writer.write(cv2.cvtColor(np.ascontiguousarray(scene[:, i : i + 128]), cv2.COLOR_RGB2BGR))
    writer.release()
    return folder


def run_cli(main, args: list[str], capsys) -> tuple[int, str]:
    """Exit code and stderr of a CLI's ``main(args)`` (argparse errors exit by
    ``SystemExit``)."""
    try:
        code = main(args)
    except SystemExit as exit:
        code = exit.code
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    """Exit code 2 and one line on stderr, containing ``error:`` and every fragment."""
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert "Traceback" not in err and "error:" in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
