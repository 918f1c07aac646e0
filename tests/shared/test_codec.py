import numpy as np
import pytest
import torch

from shared.codec import CompressedFrame, ImageCodec
from shared.entropy.coder import CorruptPayload
from shared.metrics import psnr
from tests.conftest import natural_like_image


@pytest.fixture(scope="module")
def codec(tiny_model_path) -> ImageCodec:
    return ImageCodec.load(str(tiny_model_path), "cpu")


@pytest.mark.parametrize("height, width", [(144, 176), (145, 177), (1, 1), (31, 200)])
def test_any_size_roundtrips_to_the_same_size(codec, height, width):
    image = natural_like_image(height, width)
    coded = codec.compress(image, 1)
    assert (coded.height, coded.width) == (height, width)
    out = codec.decompress(coded)
    assert out.shape == (height, width, 3) and out.dtype == np.uint8


def test_compress_is_deterministic_and_decode_matches_latents(codec):
    image = natural_like_image(96, 128, seed=3)
    first = codec.compress(image, 2)
    assert codec.compress(image.copy(), 2).payload == first.payload
    shape = codec.latent_shape(96, 128)
    latents = codec.coder.decode(first.payload, 2, shape)
    np.testing.assert_array_equal(latents, codec.analyze(image, 2))


def test_bitstream_identical_across_thread_counts(codec):
    image = natural_like_image(160, 224, seed=4)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = codec.compress(image, 1).payload
        torch.set_num_threads(2)
        two = codec.compress(image, 1).payload
    finally:
        torch.set_num_threads(before)
    assert one == two


def test_gray_and_bgr_inputs(codec):
    rgb = natural_like_image(64, 64)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    assert codec.compress(bgr, 0, "bgr").payload == codec.compress(rgb, 0, "rgb").payload
    gray = rgb[:, :, 1]
    assert codec.decompress(codec.compress(gray, 0, "bgr")).shape == (64, 64, 3)


def test_bad_level_and_corrupt_payload(codec):
    image = natural_like_image(32, 32)
    with pytest.raises(ValueError):
        codec.compress(image, codec.levels)
    coded = codec.compress(image, 0)
    with pytest.raises(CorruptPayload):
        codec.decompress(CompressedFrame(coded.payload[:-4], 32, 32, 0))


@pytest.mark.parametrize("height, width", [(144, 176), (721, 1279)])
def test_shipped_model_codes_small_and_hd_frames(height, width):
    codec = ImageCodec.load("fast", "cpu")
    image = natural_like_image(height, width, seed=1)
    coded = codec.compress(image, 0)
    out = codec.decompress(coded)
    assert out.shape == image.shape
    assert psnr(image, out) > 20


def test_shipped_default_model_beats_a_trivial_bound():
    """The shipped model reconstructs a photo-like frame far better than a flat guess."""
    codec = ImageCodec.load("fast", "cpu")
    image = natural_like_image(144, 176, seed=9)
    out = codec.decompress(codec.compress(image, codec.levels - 1))
    flat = np.full_like(image, int(image.mean()))
    assert psnr(image, out) > psnr(image, flat) + 6


@pytest.mark.parametrize("slice_rows", [4, 8, 12, 16])
def test_band_coding_equals_coding_each_band_alone(slice_rows):
    """``entropy_encode_bands`` runs the prior once per frame when bands sit on prior-tile
    rows; its payloads must be exactly those of each band coded alone, and a missing or
    damaged band must not change what the others decode to."""
    from shared.codec import band_of, slice_bands

    codec = ImageCodec.load("realtime", "cpu")
    rgb = natural_like_image(37 * 16, 9 * 16, seed=3)  # 37 latent rows: a short last band
    latents = codec.analyze_all(rgb, 2)
    shape = latents.y.shape
    bands = slice_bands(shape[1], slice_rows)
    payloads = codec.entropy_encode_bands(latents, 2, bands)
    assert payloads == [codec.entropy_encode(band_of(latents, a, b), 2) for a, b in bands]

    out = np.full(shape, 7, dtype=np.int64)
    z = np.zeros(codec.hyper_shape(shape), dtype=np.int64)
    assert codec.entropy_decode_bands(payloads, 2, shape, bands, out, z) == []
    np.testing.assert_array_equal(out, latents.y)
    np.testing.assert_array_equal(z, latents.z)

    broken = list(payloads)
    broken[1] = None  # lost
    broken[2] = payloads[2][:-4] + bytes(4)  # damaged
    out = np.full(shape, 7, dtype=np.int64)
    damaged = codec.entropy_decode_bands(broken, 2, shape, bands, out)
    assert 1 in damaged and set(damaged) <= {1, 2}
    for index, (a, b) in enumerate(bands):
        if index in damaged:
            assert (out[:, a:b] == 7).all()  # left as it was
        else:
            np.testing.assert_array_equal(out[:, a:b], latents.y[:, a:b])


def test_default_model_is_the_lite_one_where_transforms_compute_in_float32(monkeypatch):
    from shared import codec as codec_module
    from shared.registry import DEFAULT_MODEL, LITE_MODEL

    monkeypatch.setattr(codec_module, "cpu_has_native_bf16", lambda: True)
    assert codec_module.default_model("cpu") == DEFAULT_MODEL
    assert codec_module.default_model("cpu", "fp32") == LITE_MODEL
    monkeypatch.setattr(codec_module, "cpu_has_native_bf16", lambda: False)
    assert codec_module.default_model("cpu") == LITE_MODEL
    assert codec_module.default_model("cpu", "bf16") == LITE_MODEL  # emulated: slower still
    lite, full = ImageCodec.load(LITE_MODEL, "cpu"), ImageCodec.load(DEFAULT_MODEL, "cpu")
    assert lite.levels == full.levels and lite.stride == full.stride
    assert lite.model.config.latent == full.model.config.latent
