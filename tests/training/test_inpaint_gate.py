"""The concealment gate's calibration: threshold choice and its report."""

import math

import pytest

from training.inpaint_gate import summarise


def _row(change: float, inpaint: float, copy: float) -> dict:
    return {"change": change, "pixels": 300, "sse_inpaint": inpaint, "sse_copy": copy}


def test_threshold_copies_exactly_where_copying_wins_below_it():
    rows = [
        _row(0.2, 50.0, 10.0),  # still: copy better
        _row(0.8, 40.0, 20.0),  # still: copy better
        _row(3.0, 30.0, 60.0),  # moving: inpaint better
        _row(9.0, 80.0, 400.0),
    ]
    report = summarise(rows)
    assert report["threshold"] == 0.8 and report["copied_share"] == 0.5
    gated_sse = 10.0 + 20.0 + 30.0 + 80.0
    assert report["psnr"]["gated"] == pytest.approx(
        10 * math.log10(255**2 / (gated_sse / 1200)), abs=1e-3
    )
    assert report["psnr"]["gated"] > max(report["psnr"]["inpaint"], report["psnr"]["copy"])
    assert sum(b["samples"] for b in report["bins"]) == 4


def test_threshold_zero_when_inpainting_always_wins():
    report = summarise([_row(0.1, 1.0, 5.0), _row(5.0, 2.0, 9.0)])
    assert report["threshold"] == 0.0 and report["copied_share"] == 0.0
    assert report["psnr"]["gated"] == report["psnr"]["inpaint"]


def test_no_samples_is_an_error():
    with pytest.raises(ValueError):
        summarise([])


def test_calibration_command_runs_on_held_out_training_images(tmp_path):
    import json

    from tests.conftest import write_images
    from training.__main__ import main

    # every 20th file is held out: files 0 and 20
    folder = write_images(tmp_path / "train", 21, 80, 96, "img_{i:02d}.png")
    out = tmp_path / "gate"
    args = ["inpaint-gate", "--data", str(folder), "--out", str(out), "--samples", "6"]
    assert main([*args, "--crop", "64"]) == 0
    report = json.loads((out / "gate.json").read_text())
    assert report["samples"] <= 6 and report["threshold"] >= 0.0
    assert set(report["psnr"]) == {"inpaint", "copy", "gated"}
