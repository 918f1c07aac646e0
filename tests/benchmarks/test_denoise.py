"""The denoising benchmark: noisy inputs, PSNR against the clean image, real bits."""

import json

import cv2
import numpy as np
import pytest

from benchmarks.__main__ import main
from benchmarks.bd import bd_psnr
from benchmarks.denoise import SEED, add_noise, compare, nlm, psnr_at, run_denoise
from shared import wire
from shared.codec import CompressedFrame, ImageCodec
from shared.metrics import psnr
from tests.conftest import make_model_file, write_images


@pytest.fixture
def folder(tmp_path):
    return write_images(tmp_path / "images", 2, 64, 80, "im{i}.png")


def test_denoise_benchmark_outputs_and_real_bits(tmp_path, folder, tiny_model_path, capsys):
    other = make_model_file(tmp_path / "other.safetensors", seed=3)
    out = tmp_path / "out"
    args = ["denoise", "--images", str(folder), "--out", str(out), "--sigmas", "0.05", "0.1"]
    args += ["--regular", str(tiny_model_path), "--denoise-model", str(other), "--threads", "1"]
    assert main([*args, "--strong-model", "none"]) == 0
    assert "BD-PSNR" in capsys.readouterr().out
    assert (out / "denoise.png").stat().st_size > 0
    report = json.loads((out / "denoise.json").read_text())
    assert report["count"] == 2 and set(report["sigmas"]) == {"0.05", "0.1"}
    assert [len(report["clean"][name]) for name in ("regular", "denoise")] == [3, 3]

    clean = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(folder.iterdir())]
    codec = ImageCodec.load(str(other))
    for sigma, entry in report["sigmas"].items():
        noisy = [add_noise(image, float(sigma), [SEED, i]) for i, image in enumerate(clean)]
        assert entry["noisy_psnr"] == pytest.approx(
            np.mean([psnr(c, n) for c, n in zip(clean, noisy, strict=True)])
        )
        assert entry["noisy_psnr"] < 35 - 100 * float(sigma)  # the noise is really there
        assert len(entry["curves"]["regular"]) == len(entry["curves"]["denoise"]) == 3
        assert len(entry["curves"]["nlm+jpeg"]) >= 8
        h = entry["nlm"]["h"]
        assert entry["nlm"]["psnr"] == pytest.approx(
            np.mean([psnr(c, nlm(n, h)) for c, n in zip(clean, noisy, strict=True)])
        )
        # (b)'s level 1 again by hand: whole wire messages that decode, PSNR against clean.
        bits, quality = [], []
        for target, source in zip(clean, noisy, strict=True):
            coded = codec.compress(source, 1)
            message = wire.encode_frame(
                wire.FrameMessage("bench", 0, 0, 80, 64, codec.model_hash, 1, coded.payload)
            )
            parsed = wire.decode(message)
            decoded = codec.decompress(CompressedFrame(parsed.payload, 64, 80, 1))
            bits.append(8 * sum(len(p) for p in message) / (64 * 80))
            quality.append(psnr(target, decoded))
        point = entry["curves"]["denoise"][1]
        assert point["bpp"] == pytest.approx(np.mean(bits))
        assert point["psnr"] == pytest.approx(np.mean(quality))
        assert len(entry["matched"]) == 3
        assert all(row["regular_on_clean"] is not None for row in entry["matched"][:1])
        assert isinstance(entry["target_vs_regular_met"], bool)


def test_b_codes_strong_noise_with_the_strong_model_as_the_sender_does(
    tmp_path, folder, tiny_model_path
):
    mild = make_model_file(tmp_path / "mild.safetensors", seed=3)
    strong = make_model_file(tmp_path / "strong.safetensors", seed=4)
    report = run_denoise(
        str(folder),
        str(tmp_path / "out"),
        (0.05, 0.1),
        str(tiny_model_path),
        str(mild),
        str(strong),
    )
    # The test images carry noise of 4 levels (0.016 of the range): clean and 0.05 read mild.
    assert report["clean_noise"]["strong_model_share"] == 0
    assert report["sigmas"]["0.05"]["noise_estimate"]["strong_model_share"] == 0
    noise = report["sigmas"]["0.1"]["noise_estimate"]
    assert noise["strong_model_share"] == 1 and noise["estimate_min"] >= noise["threshold"]
    assert noise["estimate_median"] == pytest.approx(0.1, abs=0.01)
    clean = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(folder.iterdir())]
    for sigma, model in (("0.05", mild), ("0.1", strong)):
        codec = ImageCodec.load(str(model))
        noisy = [add_noise(image, float(sigma), [SEED, i]) for i, image in enumerate(clean)]
        sizes = [len(codec.compress(image, 2).payload) for image in noisy]
        point = report["sigmas"][sigma]["curves"]["denoise"][2]
        assert point["bpp"] > 8 * np.mean(sizes) / (64 * 80)  # payloads plus the header
        assert point["bpp"] < 8 * (np.mean(sizes) + 200) / (64 * 80)
        assert point["psnr"] == pytest.approx(
            np.mean(
                [
                    psnr(c, codec.decompress(codec.compress(n, 2)))
                    for c, n in zip(clean, noisy, strict=True)
                ]
            )
        )


def test_b_needs_the_same_levels_from_both_models(tmp_path, folder, tiny_model_path):
    with pytest.raises(ValueError, match="same levels"):
        run_denoise(str(folder), str(tmp_path / "out"), (0.1,), "fast", str(tiny_model_path))


def test_matched_rate_comparison_and_bd_psnr():
    rates = [0.1, 0.2, 0.4, 0.8, 1.6]
    base = [26.0, 28.0, 30.0, 32.0, 34.0]
    assert bd_psnr(rates, base, rates, base) == pytest.approx(0, abs=1e-9)
    assert bd_psnr(rates, base, rates, [x + 2.5 for x in base]) == pytest.approx(2.5)
    assert bd_psnr(rates, base, [r * 100 for r in rates], base) is None  # no overlap

    def points(rs, dbs):
        return [
            {"quality": i, "bpp": r, "psnr": d}
            for i, (r, d) in enumerate(zip(rs, dbs, strict=True))
        ]

    a = points(rates, base)
    assert psnr_at(a, 0.3) == pytest.approx(29.0 + 2 * (np.log(1.5) / np.log(2) - 0.5))
    assert psnr_at(a, 0.05) == 26.0  # below the range: the lowest-rate point (more bits)
    assert psnr_at(a, 2.0) is None
    b = points([0.05, 0.2, 0.4, 2.0], [29.0, 31.0, 33.0, 35.0])
    c = points(rates, [x + 1 for x in base])
    result = compare({"regular": a, "denoise": b, "nlm+jpeg": c})
    gains = [r["gain_vs_regular"] for r in result["matched"]]
    assert gains[:3] == pytest.approx([3.0, 3.0, 3.0]) and gains[3] is None
    assert result["target_vs_regular_met"] and result["target_vs_nlm+jpeg_met"]
    assert result["min_gain_vs_nlm+jpeg"] == pytest.approx(2.0)
