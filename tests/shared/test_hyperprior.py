"""The hyperprior's prior network is exact integer arithmetic, so every device picks the same
tables; its Gaussian tables are valid; its bitstream round-trips exactly."""

import numpy as np
import pytest
import torch

from shared.entropy.gaussian import SCALE_COUNT, gaussian_tables, scale_table
from shared.models.hyperprior import HyperpriorConfig, HyperpriorModel
from shared.models.integer import (
    ACT_BITS,
    ACT_LIMIT_BITS,
    INPUT_LIMIT_BITS,
    WEIGHT_BITS,
    IntegerNetwork,
)


def reference_run(network: IntegerNetwork, inputs: np.ndarray) -> np.ndarray:
    """The same network in pure int64 arithmetic (no floating point, no BLAS)."""
    limit = 2**INPUT_LIMIT_BITS
    act = np.clip(inputs.astype(np.int64), -limit, limit) * 2**ACT_BITS
    for layer in network.layers:
        if layer[0] == "conv":
            weight, bias = layer[1].astype(np.int64), layer[2]
            k = weight.shape[2]
            padded = np.pad(act, ((0, 0), (k // 2, k // 2), (k // 2, k // 2)))
            windows = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(1, 2))
            acc = np.einsum("chwij,ocij->ohw", windows, weight) + bias[:, None, None]
            act = np.clip(acc >> WEIGHT_BITS, -(2**ACT_LIMIT_BITS), 2**ACT_LIMIT_BITS)
        elif layer[0] == "relu":
            act = np.maximum(act, 0)
        else:
            f = layer[1]
            c, h, w = act.shape
            act = act.reshape(c // f // f, f, f, h, w).transpose(0, 3, 1, 4, 2)
            act = act.reshape(c // f // f, h * f, w * f)
    return act


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = HyperpriorModel(HyperpriorConfig(hidden=8, latent=16, hyper=12, lambdas=(0.01, 0.1)))
    model.integer_h_s = IntegerNetwork.from_sequential(model.h_s)
    return model


@pytest.mark.parametrize("scale", [1, 20, 10**6])
def test_integer_network_is_exact(model, scale):
    rng = np.random.default_rng(scale)
    z = rng.integers(-scale, scale + 1, size=(12, 5, 7))
    out = model.integer_h_s.run(z)
    np.testing.assert_array_equal(out, reference_run(model.integer_h_s, z))
    assert out.shape == (16, 20, 28)


def test_batched_integer_network_equals_each_item_alone(model):
    batch = np.random.default_rng(7).integers(-300, 301, size=(5, 12, 2, 3))
    out = model.integer_h_s.run(batch)
    assert out.shape == (5, 16, 8, 12)
    for item, got in zip(batch, out, strict=True):
        np.testing.assert_array_equal(got, reference_run(model.integer_h_s, item))


@pytest.mark.parametrize("shape", [(1, 2), (2, 1), (2, 2), (3, 3), (4, 5)])
def test_integer_network_is_exact_on_inputs_smaller_than_its_kernels(model, shape):
    """Below 3x3 positions the convolutions run as dense maps (no zero-padding products);
    at 3x3 and above through im2col; both are the reference's integers."""
    z = np.random.default_rng(5).integers(-2000, 2001, size=(12, *shape))
    np.testing.assert_array_equal(model.integer_h_s.run(z), reference_run(model.integer_h_s, z))


def test_run_tiles_is_every_window_on_its_own(model):
    z = np.random.default_rng(6).integers(-500, 501, size=(12, 4, 6))
    out = model.integer_h_s.run_tiles(z, 2)
    assert out.shape == (16, 1, 16, 24)
    for top in range(0, 4, 2):
        for left in range(0, 6, 2):
            window = reference_run(model.integer_h_s, z[:, top : top + 2, left : left + 2])
            got = out[:, 0, 4 * top : 4 * top + 8, 4 * left : 4 * left + 8]
            np.testing.assert_array_equal(got, window)
    with pytest.raises(ValueError, match="windows"):
        model.integer_h_s.run_tiles(z[:, :3], 2)


def test_pixel_shuffle_is_torchs():
    from shared.models.integer import pixel_shuffle

    planar = np.arange(2 * 3 * 9 * 4 * 5).reshape(2 * 9, 3, 4, 5)
    expected = torch.nn.functional.pixel_shuffle(torch.from_numpy(planar.transpose(1, 0, 2, 3)), 3)
    np.testing.assert_array_equal(pixel_shuffle(planar, 3), expected.numpy().transpose(1, 0, 2, 3))


@pytest.mark.parametrize(
    ("spread", "height", "width"),
    # 19 x 22: edge tiles of 3 rows (hyper-latent crops of two shapes) and 6 columns;
    # 14 x 22: edge tiles of 6 rows and columns (every crop 2 x 2: one grid, run_tiles).
    [(30, 19, 22), (3000, 19, 22), (30, 14, 22)],
)
def test_table_indices_are_the_fixed_point_formula_per_prior_tile(model, spread, height, width):
    """Against a plain restatement: each 8x8 tile from its own hyper-latents through the
    int64 reference network, plus the level's log gain, clipped, and rounded to one of
    SCALE_COUNT steps with integer division. The wide spread drives log scales past both
    ends of the tables' range."""
    from shared.models.hyperprior import _fixed_log_scale_bounds, prior_tiles

    shape = (12, -(-height // 4), -(-width // 4))
    z = np.random.default_rng(4).integers(-spread, spread + 1, size=shape)
    level = 1
    low, high = _fixed_log_scale_bounds()
    gain = np.round(model.log_gain[level].detach().double().numpy() * 2**ACT_BITS)
    expected = np.empty((16, height, width), dtype=np.int64)
    for top, left, bottom, right in prior_tiles(height, width):
        tile_z = z[:, top // 4 : -(-bottom // 4), left // 4 : -(-right // 4)]
        out = reference_run(model.integer_h_s, tile_z)[:, : bottom - top, : right - left]
        log_scale = np.clip(out + gain.astype(np.int64)[:, None, None], low, high)
        index = ((log_scale - low) * (SCALE_COUNT - 1) + (high - low) // 2) // (high - low)
        expected[:, top:bottom, left:right] = index
    np.testing.assert_array_equal(model.table_indices(z, level, (height, width)), expected)
    if spread > 100:
        assert expected.min() == 0 and expected.max() == SCALE_COUNT - 1


def test_integer_network_follows_the_float_network(model):
    z = np.random.default_rng(1).integers(-3, 4, size=(12, 4, 4))
    with torch.no_grad():
        expected = model.h_s(torch.from_numpy(z).float().unsqueeze(0))[0].numpy()
    got = model.integer_h_s.run(z) / 2**ACT_BITS
    assert np.abs(got - expected).max() < 0.05


def test_integer_network_survives_its_tensor_form(model):
    tensors = model.integer_h_s.to_tensors("p/")
    again = IntegerNetwork.from_tensors(tensors, "p/")
    z = np.random.default_rng(2).integers(-5, 6, size=(12, 3, 3))
    np.testing.assert_array_equal(again.run(z), model.integer_h_s.run(z))
    tensors["p/0.weight"] = tensors["p/0.weight"].astype(np.float32)
    with pytest.raises(ValueError):
        IntegerNetwork.from_tensors(tensors, "p/")


def test_table_indices_in_range_and_thread_independent(model):
    z = np.random.default_rng(3).integers(-40, 41, size=(12, 3, 4))
    torch.set_num_threads(1)
    one = model.table_indices(z, 1, (10, 13))
    torch.set_num_threads(2)
    two = model.table_indices(z, 1, (10, 13))
    np.testing.assert_array_equal(one, two)
    assert one.shape == (16, 10, 13)
    assert one.min() >= 0 and one.max() < SCALE_COUNT


def test_gaussian_tables_are_valid_and_widen_with_scale():
    scales = scale_table()
    tables = gaussian_tables(scales)
    tables.validate()
    assert tables.channels == len(scales) == SCALE_COUNT
    assert list(tables.lengths[0]) == sorted(tables.lengths[0])
    # The narrowest table puts nearly all mass on zero.
    row = tables.row(0, 0)
    assert row[-tables.offsets[0, 0]] > 0.99 * row.sum()


def test_training_and_validation_see_the_prior_tiles_the_codec_codes():
    """On crops of multiples of 128 pixels, the float model computes z and the scales per
    prior tile, as the codec does (whole-crop hyper-analysis would see interior positions
    the codec never codes, and validation would then measure another rate)."""
    from shared.models.hyperprior import _from_tiles

    torch.manual_seed(3)
    model = HyperpriorModel(HyperpriorConfig(hidden=8, latent=16, hyper=12, lambdas=(0.01,)))
    code = torch.randn(2, 16, 16, 24)
    tiles_in, tiles = model.prior_input(code)
    assert tiles == (2, 2, 3) and tiles_in.shape == (12, 16, 8, 8)
    with torch.no_grad():
        z = _from_tiles(model.hyper_latents(tiles_in), *tiles)
        for item in range(2):
            np.testing.assert_allclose(
                z[item : item + 1], model.tiled_hyper_latents(code[item : item + 1]), atol=1e-6
            )
        log_scale = model.log_scales(torch.round(model.hyper_latents(tiles_in)), 0, (16, 24), tiles)
        one_tile = model.log_scales(
            torch.round(model.hyper_latents(code[1:, :, 8:, 16:])), 0, (8, 8)
        )
    np.testing.assert_allclose(log_scale[1:, :, 8:, 16:], one_tile, atol=1e-6)
    odd, none = model.prior_input(code[:, :, :12])
    assert none is None and odd.shape == (2, 16, 12, 24)


def test_output_head_is_the_offset_and_clip_applied_afterwards(model):
    """Fused into the last convolution, the head gives what adding the offset to the plain
    output and clipping gives, also where the plain output was clamped."""
    from shared.models.integer import OutputHead

    network = model.integer_h_s
    z = np.random.default_rng(8).integers(-3000, 3001, size=(1, 12, 2, 3))
    plain = network.run_planar(z, final_shuffle=False)
    offset = np.random.default_rng(9).integers(-5000, 5000, size=plain.shape[0])
    head = OutputHead(offset, -700, 1900)
    fused = network.run_planar(z, final_shuffle=False, head=head)
    np.testing.assert_array_equal(fused, np.clip(plain + offset[:, None, None, None], -700, 1900))
    with pytest.raises(ValueError, match="exactness bound"):
        OutputHead(offset, 0, 2**ACT_LIMIT_BITS)
    with pytest.raises(ValueError, match="does not match"):
        network.run_planar(z, final_shuffle=False, head=OutputHead(offset[:-1], 0, 1))
    relu_last = IntegerNetwork([*network.layers[:1], ("relu",)])
    with pytest.raises(ValueError, match="ends in a convolution"):
        relu_last.run_planar(z, head=OutputHead(offset[:12], 0, 1))


def test_table_indices_follow_gains_changed_in_place(model):
    """The output head is made from the gains at every call, so it never goes stale."""
    z = np.random.default_rng(10).integers(-40, 41, size=(12, 2, 2))
    before = model.table_indices(z, 0, (8, 8))
    saved = model.log_gain.detach().clone()
    with torch.no_grad():
        model.log_gain[0] += 2.0
    try:
        after = model.table_indices(z, 0, (8, 8))
    finally:
        with torch.no_grad():
            model.log_gain.copy_(saved)
    assert (after > before).any() and (after >= before).all()
    np.testing.assert_array_equal(model.table_indices(z, 0, (8, 8)), before)


def test_output_head_keeps_its_own_offset_and_bounds_it():
    from shared.models.integer import OutputHead

    offset = np.array([1, 2, 3])
    head = OutputHead(offset, 0, 10)
    offset[0] = 2**40
    assert head.offset[0] == 1  # a copy, validated once
    with pytest.raises(ValueError, match="exactness bound"):
        OutputHead(np.array([-(2**63)]), 0, 10)  # |int64 min| is negative in NumPy


def test_integer_network_refuses_biases_outside_the_exactness_bound():
    from shared.models.integer import BIAS_LIMIT_BITS

    weight = np.ones((2, 2, 1, 1), dtype=np.int32)
    IntegerNetwork([("conv", weight, np.array([0, 2**BIAS_LIMIT_BITS - 1]))])
    with pytest.raises(ValueError, match="bias outside"):
        IntegerNetwork([("conv", weight, np.array([0, -(2**BIAS_LIMIT_BITS)]))])


def test_a_prior_that_cannot_run_is_refused_when_checked(model):
    """What the codec checks at load: a prior network that does not end in a convolution,
    or gains that are not finite, fail there rather than on every frame."""
    model.check_prior()
    saved_network, saved_gain = model.integer_h_s, model.log_gain.detach().clone()
    try:
        with torch.no_grad():
            model.log_gain[1, 3] = float("nan")
        with pytest.raises(ValueError, match="not finite"):
            model.check_prior()
        with torch.no_grad():
            model.log_gain.copy_(saved_gain)
        model.integer_h_s = IntegerNetwork([*saved_network.layers, ("relu",)])
        with pytest.raises(ValueError, match="ends in a convolution"):
            model.check_prior()
    finally:
        model.integer_h_s = saved_network
        with torch.no_grad():
            model.log_gain.copy_(saved_gain)
