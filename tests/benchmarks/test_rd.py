"""The RD benchmark counts real, decodable bits and writes its three outputs."""

import json

import cv2
import numpy as np
import pytest

from benchmarks.bd import bd_rate
from benchmarks.rd import run_rd
from shared import wire
from shared.codec import CompressedFrame, ImageCodec
from shared.metrics import psnr
from tests.conftest import write_images


@pytest.fixture
def folder(tmp_path):
    return write_images(tmp_path / "images", 2, 176, 192, "im{i}.png")


def test_rd_outputs_and_real_bits(tmp_path, folder, tiny_model_path):
    out = tmp_path / "out"
    run_rd(str(folder), str(out), [str(tiny_model_path)], ["jpeg", "x264-intra"])
    report = json.loads((out / "rd.json").read_text())
    assert (out / "rd.png").stat().st_size > 0
    bd = json.loads((out / "bd_rate.json").read_text())
    assert "x264-intra" in bd["vs_jpeg"]

    ours = report["codecs"]["tiny"]
    codec = ImageCodec.load(str(tiny_model_path))
    images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(folder.iterdir())]
    for point in ours:
        level = point["quality"]
        bits, quality = [], []
        for rgb in images:
            coded = codec.compress(rgb, level)
            message = wire.encode_frame(
                wire.FrameMessage("bench", 0, 0, 192, 176, codec.model_hash, level, coded.payload)
            )
            parsed = wire.decode(message)  # the counted bytes decode
            decoded = codec.decompress(CompressedFrame(parsed.payload, 176, 192, level))
            bits.append(8 * sum(len(p) for p in message) / (176 * 192))
            quality.append(psnr(rgb, decoded))
        assert point["bpp"] == pytest.approx(np.mean(bits))
        assert point["psnr"] == pytest.approx(np.mean(quality))
        assert 0 <= point["nonzero_fraction"] <= 1
        assert abs(point["coding_overhead_pct"]) < 5
        assert point["ms_ssim"] is not None
    jpeg = report["codecs"]["jpeg"]
    assert len(jpeg) >= 10 and all(p["bpp"] > 0 for p in jpeg)


def test_bd_rate_of_a_curve_against_itself_is_zero_and_halving_bits_is_minus_50():
    rate = [0.1, 0.2, 0.4, 0.8, 1.6]
    quality = [25.0, 28.0, 31.0, 34.0, 37.0]
    assert bd_rate(rate, quality, rate, quality) == pytest.approx(0, abs=1e-9)
    assert bd_rate(rate, quality, [r / 2 for r in rate], quality) == pytest.approx(-50)
    assert bd_rate(rate[:3], quality[:3], rate, quality) is None
