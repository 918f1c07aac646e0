"""The video benchmark codes real streams both ways and x264 at matched rates."""

import json

import pytest

from benchmarks.__main__ import main
from benchmarks.video import run_video
from tests.conftest import write_pan_clip


@pytest.fixture
def clip_folder(tmp_path):
    """A 12-frame 128x96 clip: a slow pan over a textured scene."""
    return write_pan_clip(tmp_path / "videos", 12)


def test_inter_beats_intra_and_x264_is_coded_at_our_rates(clip_folder, tmp_path):
    out = tmp_path / "out"
    result = run_video(str(clip_folder), str(out), "realtime", 12, 300, [0, 2, 4, 6], ("*.avi",))
    entry = result["clips"]["pan.avi"]
    assert entry["frames"] == 12 and entry["size"] == "128x96"
    assert [p["key_frames"] for p in entry["intra"]] == [12] * 4
    assert [p["key_frames"] for p in entry["inter"]] == [1] * 4
    for point in entry["intra"] + entry["inter"]:
        assert 0 < point["zero_share"] < 1  # sparsity of the decoded latents
    # fewer bits, more zeros: the lowest level's code is the sparsest
    assert entry["intra"][0]["zero_share"] > entry["intra"][-1]["zero_share"]
    for intra, inter in zip(entry["intra"], entry["inter"], strict=True):
        assert inter["kbps"] < intra["kbps"]
        assert abs(inter["psnr"] - intra["psnr"]) < 1.5
    for ours, x264 in zip(entry["inter"], entry["x264"], strict=True):
        assert x264["target_kbps"] == ours["kbps"] and x264["kbps"] > 0 and x264["psnr"] > 15
    # (This synthetic scene saturates in PSNR, so its BD-rates are not meaningful.)
    assert entry["intra_over_inter_bits_same_level_median"] > 1.3
    saved = json.loads((out / "video.json").read_text())
    assert saved["clips"]["pan.avi"]["inter"] == entry["inter"]
    assert (out / "video.png").stat().st_size > 10_000


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["video", "--videos", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
    assert "no folder" in capsys.readouterr().err
    assert main(["video", "--videos", str(tmp_path), "--out", str(tmp_path), "--levels", "99"]) == 2
