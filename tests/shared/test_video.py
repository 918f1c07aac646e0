"""Key and predicted frames in slices: exact decoding, references, damage and encoder
decisions."""

import hashlib

import numpy as np
import pytest

from shared.codec import CompressedFrame, ImageCodec
from shared.entropy.coder import CorruptPayload
from shared.entropy.residual import TABLES_FILE, TABLES_SHA256, build, residual_tables
from shared.inter import GainRescaler, choose_latents
from shared.video import MissingReference, VideoDecoder, VideoEncoder, VideoSettings, slice_bands
from tests.conftest import natural_like_image


@pytest.fixture(scope="module", params=["realtime", "fast"])
def codec(request) -> ImageCodec:
    return ImageCodec.load(request.param, "cpu")


def moving_frames(count: int, height: int = 96, width: int = 128) -> list[np.ndarray]:
    """A scene panning one pixel per frame, with a little sensor-like noise."""
    scene = natural_like_image(height, width + count, seed=3)
    rng = np.random.default_rng(0)
    frames = []
    for i in range(count):
        noisy = scene[:, i : i + width].astype(np.int16) + rng.integers(-2, 3, (height, width, 3))
        frames.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return frames


def test_slices_cover_the_rows():
    assert slice_bands(30, 8) == [(0, 8), (8, 16), (16, 24), (24, 30)]
    assert slice_bands(30, 0) == [(0, 30)]
    with pytest.raises(ValueError):
        VideoSettings(slice_rows=6)
    with pytest.raises(ValueError):
        VideoSettings(keyframe_interval=0)


def test_stream_decodes_exactly_with_levels_changing(codec):
    encoder = VideoEncoder(codec, VideoSettings(keyframe_interval=5, slice_rows=4))
    decoder = VideoDecoder(codec)
    kinds = []
    for seq, frame in enumerate(moving_frames(12)):
        coded = encoder.encode(frame, [1, 2, 2, 0][seq % 4])
        kinds.append(coded.kind)
        assert len(coded.slice_bytes) == 2  # 96 rows = 6 latent rows: slices of 4 and 2
        decoded = decoder.decode(coded, seq)
        np.testing.assert_array_equal(decoded.latents, encoder.last_latents)
        assert decoded.rgb.shape == frame.shape and decoder.synchronized
    assert kinds == ["key", "inter", "inter", "inter", "inter"] * 2 + ["key", "inter"]


def test_predicted_frames_cost_far_fewer_bits_than_key_frames(codec):
    frames = moving_frames(10)
    intra = VideoEncoder(codec, VideoSettings(keyframe_interval=1))
    inter = VideoEncoder(codec)
    intra_bytes = sum(len(intra.encode(f, 2).payload) for f in frames[1:])
    inter.encode(frames[0], 2)
    inter_bytes = sum(len(inter.encode(f, 2).payload) for f in frames[1:])
    assert inter_bytes < 0.6 * intra_bytes


def test_a_predicted_frame_without_its_reference_is_refused(codec):
    encoder, decoder = VideoEncoder(codec), VideoDecoder(codec)
    frames = moving_frames(4)
    decoder.decode(encoder.encode(frames[0], 1), 0)
    encoder.encode(frames[1], 1)  # frame 1 never reaches the decoder
    with pytest.raises(MissingReference):
        decoder.decode(encoder.encode(frames[2], 1), 2)
    assert not decoder.synchronized
    late = VideoDecoder(codec)  # joined mid-stream
    with pytest.raises(MissingReference):
        late.decode(encoder.encode(frames[3], 1), 3)
    encoder.request_key_frame()
    key = encoder.encode(frames[3], 1)
    assert key.kind == "key"
    np.testing.assert_array_equal(late.decode(key, 4).latents, encoder.last_latents)


def test_a_lost_slice_loses_only_its_band(codec):
    encoder = VideoEncoder(codec, VideoSettings(slice_rows=4))
    decoder = VideoDecoder(codec)
    frames = moving_frames(3)
    decoder.decode(encoder.encode(frames[0], 1), 0)
    coded = encoder.encode(frames[1], 1)
    decoded = decoder.decode(coded, 1, missing=frozenset({1}))
    assert decoded.damaged == [1] and not decoder.synchronized
    np.testing.assert_array_equal(decoded.latents[:, :4], encoder.last_latents[:, :4])
    # It goes on decoding (drifting in the lost band) until a key frame resynchronizes it.
    decoder.decode(encoder.encode(frames[2], 1), 2)
    assert not decoder.synchronized
    encoder.request_key_frame()
    decoder.decode(encoder.encode(frames[2], 1), 3)
    assert decoder.synchronized
    np.testing.assert_array_equal(decoder.reference.latents, encoder.last_latents)


def test_a_frame_with_no_decodable_slice_is_corrupt(codec):
    garbage = CompressedFrame(b"\x01\x02\x03\x04", 96, 128, 1, "key", 4, (4,))
    with pytest.raises(CorruptPayload):
        VideoDecoder(codec).decode(garbage, 0)


def test_deadzone_keeps_noise_out_of_the_residual():
    reference = np.zeros((2, 2, 2), dtype=np.int64)
    scaled = np.array([[[0.6, 0.8], [1.6, -0.1]], [[0.0, 0.0], [0.0, -0.75]]])
    y, skip = choose_latents(scaled, reference, deadzone=0.2, skip_l1=0)
    assert y.tolist() == [[[0, 1], [2, 0]], [[0, 0], [0, -1]]]
    assert skip.tolist() == [[True, False], [False, False]]
    y, skip = choose_latents(scaled, reference, deadzone=0.0, skip_l1=1)
    assert skip.tolist() == [[True, True], [False, True]]  # L1 norms 1, 1, 2, 1
    assert y[:, 0, 1].tolist() == [0, 0] and y[:, 1, 0].tolist() == [2, 0]


def test_gain_rescaling_is_integer_and_inverts_within_rounding():
    rescaler = GainRescaler(np.log(np.array([[1.0, 2.0], [2.0, 8.0]], dtype=np.float32)))
    latents = np.array([[[3, -3]], [[5, -7]]])
    up = rescaler.rescale(latents, 0, 1)
    assert up.dtype == np.int64 and up.tolist() == [[[6, -6]], [[20, -28]]]
    assert rescaler.rescale(up, 1, 0).tolist() == latents.tolist()
    assert rescaler.rescale(latents, 1, 1) is not latents


def test_residual_tables_file_is_the_pinned_build():
    assert hashlib.sha256(TABLES_FILE.read_bytes()).hexdigest() == TABLES_SHA256
    built, shipped = build(), residual_tables()
    np.testing.assert_array_equal(built.freqs, shipped.freqs)
    np.testing.assert_array_equal(built.offsets, shipped.offsets)
