"""The concealment benchmark measures every method on the lost bands of a real stream."""

import json

import cv2
import numpy as np
import pytest

from benchmarks.__main__ import main
from benchmarks.conceal import run_conceal
from shared.modelfile import save_weights_file
from shared.models.inpaint import InpaintNet
from tests.conftest import natural_like_image, write_pan_clip


@pytest.fixture
def clip_folder(tmp_path):
    """A 6-frame 128x96 clip: a slow pan over a textured scene."""
    return write_pan_clip(tmp_path / "videos", 6)


def test_tiny_run(clip_folder, tmp_path):
    net = InpaintNet()  # untrained: starts as copy-previous
    weights = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    model = tmp_path / "inpaint.safetensors"
    save_weights_file(model, "inpaint", net.config.to_dict(), weights, {})
    out = tmp_path / "out"
    result = run_conceal(str(clip_folder), str(out), "realtime", 6, 4, str(model), ("*.avi",), 4)
    entry = result["clips"]["pan.avi"]
    assert entry["frames"] == 6 and entry["bands"] == 5  # one lost slice per frame after the first
    original = entry["psnr_vs_original"]
    # The untrained network copies the previous picture it gets: shifted by the pan, or not.
    assert original["inpaint"] == pytest.approx(original["motion"])
    assert original["inpaint_no_motion"] == pytest.approx(original["copy"])
    assert original["motion"] > original["copy"] + 0.1  # the shift follows the pan
    assert original["gray"] < original["copy"] <= original["no_loss"] + 0.5
    assert entry["psnr_vs_reconstruction"]["gray"] < entry["psnr_vs_reconstruction"]["copy"]
    saved = json.loads((out / "conceal.json").read_text())
    assert saved["clips"]["pan.avi"] == entry and "mean_psnr_vs_original" in saved
    picture = cv2.imread(str(out / "conceal.png"))
    assert picture.shape[1] == 4 * 128


def test_cli_errors_are_one_line(tmp_path, capsys):
    args = ["conceal", "--videos", str(tmp_path / "none"), "--out", str(tmp_path)]
    assert main(args) == 2
    assert "no folder" in capsys.readouterr().err
    args = ["conceal", "--videos", str(tmp_path), "--out", str(tmp_path), "--clips", "*.avi"]
    assert main(args) == 2


def test_inpaint_example(tmp_path):
    from benchmarks.inpaint_example import run_example

    net = InpaintNet()  # untrained: the smooth fill
    weights = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    model = tmp_path / "inpaint.safetensors"
    save_weights_file(model, "inpaint", net.config.to_dict(), weights, {})
    image = tmp_path / "in.png"
    cv2.imwrite(str(image), natural_like_image(120, 160))
    result = run_example(str(image), str(tmp_path / "out"), "Hello|world", str(model))
    assert result["hole_pixels"] > 500
    assert result["hole_psnr_db"]["inpaint"] > result["hole_psnr_db"]["gray"]
    panel = cv2.imread(str(tmp_path / "out" / "inpaint_example.png"))
    assert panel.shape == (120, 480, 3)


def test_inpaint_set_compares_the_network_with_its_start_and_opencv(tmp_path):
    net = InpaintNet()  # untrained: its correction is zero, so it returns the smooth fill
    weights = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    model = tmp_path / "inpaint.safetensors"
    save_weights_file(model, "inpaint", net.config.to_dict(), weights, {})
    images = tmp_path / "images"
    images.mkdir()
    for i in range(2):
        cv2.imwrite(str(images / f"im{i}.png"), natural_like_image(120, 160 + 16 * i))
    out = tmp_path / "out"
    args = ["inpaint", "--images", str(images), "--out", str(out), "--inpaint-models", str(model)]
    assert main(args) == 0
    result = json.loads((out / "inpaint_set.json").read_text())
    assert len(result["per_image"]) == 6  # two images, caption, strokes and band each
    assert {row["mask"] for row in result["per_image"]} == {"caption", "strokes", "band"}
    for row in result["per_image"]:
        assert row["inpaint"] == row["smooth_fill"]  # the file's stem names its column
        assert max(row[name] for name in ("inpaint", "opencv_telea", "opencv_ns")) > row["gray"]
    assert result["summary"]["strokes"]["inpaint"]["beats_smooth_fill"] == 0


def test_a_band_hole_is_whole_rows_of_one_slice_with_rows_left_above_and_below():
    from benchmarks.inpaint_example import band_mask

    for seed in range(20):
        mask = band_mask(512, 768, np.random.default_rng(seed)) > 0
        rows = np.flatnonzero(mask.any(axis=1))
        assert mask[rows].all() and len(rows) == 128 and np.ptp(rows) == 127
        assert rows[0] % 16 == 0 and rows[0] >= 16 and rows[-1] < 512 - 16
    small = band_mask(120, 160, np.random.default_rng(0)) > 0
    assert small.any(axis=1).sum() == 32  # a third of the height at most, whole slices
    assert not band_mask(40, 64, np.random.default_rng(0)).any()  # too small for a band
