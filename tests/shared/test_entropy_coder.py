import numpy as np
import pytest

from shared.entropy.coder import LATENT_LIMIT, CorruptPayload, LatentCoder
from shared.entropy.tables import FrozenTables, quantize_pmf


@pytest.fixture(scope="module")
def coder() -> LatentCoder:
    levels, channels, radius = 2, 5, 12
    support = np.arange(-radius, radius + 1)
    freqs = np.zeros((levels, channels, len(support) + 1), dtype=np.int32)
    for k in range(levels):
        for c in range(channels):
            pmf = np.exp(-np.abs(support) / (0.5 + c + 2 * k))
            freqs[k, c] = quantize_pmf(np.append(pmf, 1e-4))
    tables = FrozenTables(
        freqs,
        np.full((levels, channels), -radius, np.int32),
        np.full((levels, channels), len(support), np.int32),
    )
    return LatentCoder(tables)


def roundtrip(coder, latents, level=0):
    data = coder.encode(latents, level)
    assert len(data) % 4 == 0
    decoded = coder.decode(data, level, latents.shape)
    np.testing.assert_array_equal(decoded, np.clip(latents, -LATENT_LIMIT, LATENT_LIMIT))
    return data


def test_random_latents_roundtrip_exactly(coder):
    rng = np.random.default_rng(1)
    for level in (0, 1):
        latents = np.round(rng.laplace(scale=3, size=(5, 9, 13))).astype(np.int32)
        roundtrip(coder, latents, level)


@pytest.mark.parametrize(
    "fill",
    [0, 12, -12, 13, -13, 10_000, -(2**31), 2**31 - 1],
    ids=["zero", "top", "bottom", "above", "below", "huge", "int32-min", "int32-max"],
)
def test_adversarial_constant_latents(coder, fill):
    latents = np.full((5, 4, 3), fill, dtype=np.int64)
    roundtrip(coder, latents)


def test_every_value_escaped_and_mixed(coder):
    rng = np.random.default_rng(2)
    latents = rng.integers(-(2**29), 2**29, size=(5, 6, 7))
    roundtrip(coder, latents)
    latents[:, ::2] = rng.integers(-3, 4, size=latents[:, ::2].shape)
    roundtrip(coder, latents, 1)


def test_single_element_and_empty_spatial(coder):
    roundtrip(coder, np.array([[[1]], [[-1]], [[0]], [[50]], [[-50]]]))
    roundtrip(coder, np.zeros((5, 0, 3), dtype=np.int32))


def test_encoding_is_deterministic(coder):
    latents = np.random.default_rng(3).integers(-20, 20, size=(5, 8, 8))
    assert coder.encode(latents, 0) == coder.encode(latents.copy(), 0)


def test_size_matches_information_content(coder):
    """Real bytes are within 1% (+ one 32-bit word of ANS state) of sum(-log2 p)."""
    rng = np.random.default_rng(4)
    latents = np.round(rng.laplace(scale=2, size=(5, 64, 64))).astype(np.int64)
    assert ((latents < -12) | (latents > 12)).any()  # some escapes included
    tables = coder.tables
    by_hand = 0.0
    for c in range(5):
        row, offset, length = tables.row(0, c), tables.offsets[0, c], tables.lengths[0, c]
        for value in latents[c].ravel():
            index = value - offset
            if 0 <= index < length:
                by_hand -= np.log2(row[index] / row.sum())
            else:
                by_hand += 32 - np.log2(row[length] / row.sum())  # escape symbol + raw bits
    information = coder.information_bits(latents, 0)
    assert information == pytest.approx(by_hand)
    bits = 8 * len(coder.encode(latents, 0))
    assert information <= bits <= information * 1.01 + 64


def test_wrong_shape_or_level_is_refused(coder):
    with pytest.raises(ValueError):
        coder.encode(np.zeros((4, 2, 2), np.int32), 0)
    with pytest.raises(ValueError):
        coder.encode(np.zeros((5, 2, 2), np.int32), 2)


def test_truncated_or_padded_payloads_are_detected(coder):
    latents = np.random.default_rng(5).integers(-12, 13, size=(5, 16, 16))
    data = coder.encode(latents, 0)
    with pytest.raises(CorruptPayload):
        coder.decode(data[:-1], 0, latents.shape)
    with pytest.raises(CorruptPayload):
        coder.decode(data + b"\x01\x00\x00\x00", 0, latents.shape)


def test_a_payload_ending_in_a_zero_word_is_a_corrupt_payload():
    """constriction refuses such words with a ValueError of its own; callers that catch
    ``CorruptPayload`` (a damaged slice) must see that type."""
    from shared.entropy.coder import bytes_to_decoder

    with pytest.raises(CorruptPayload):
        bytes_to_decoder(b"\x01\x00\x00\x00" + bytes(4))


def test_an_escaped_value_outside_the_latent_range_is_a_corrupt_payload(coder):
    """No encoder writes an escape beyond LATENT_LIMIT (values are clamped first); a
    payload that holds one (here zig-zag code 2**32 - 1, i.e. -2**31) is refused."""
    import constriction

    from shared.entropy.coder import words_to_bytes

    ans = constriction.stream.stack.AnsCoder()
    ans.encode_reverse(np.array([0xFFFF, 0xFFFF], dtype=np.int32), coder._uniform)
    for channel in (4, 3, 2, 1):  # value 0 in channels 1-4, popped after channel 0's
        ans.encode_reverse(np.array([12], dtype=np.int32), coder._models[0][channel])
    escape = np.full(1, coder.tables.lengths[0, 0], dtype=np.int32)
    ans.encode_reverse(escape, coder._models[0][0])
    with pytest.raises(CorruptPayload, match="outside the latent range"):
        coder.decode(words_to_bytes(ans), 0, (5, 1, 1))


@pytest.mark.parametrize("bad_row", [-1, 5, 65536 + 3])
def test_row_assignment_outside_the_tables_is_refused(coder, bad_row):
    import constriction

    values = np.zeros(40, dtype=np.int32)
    rows = np.arange(40, dtype=np.int64) % 5
    rows[17] = bad_row  # 65539 would wrap to row 3 in a 16-bit cast
    with pytest.raises(ValueError, match="outside the tables"):
        coder.encode_into(constriction.stream.stack.AnsCoder(), values, rows, 0)


def test_grouped_rows_in_any_order_roundtrip(coder):
    """Rows unsorted, some absent, repeated: each value pops with its own row's model."""
    import constriction

    rng = np.random.default_rng(9)
    rows = rng.choice(np.array([4, 1, 3], dtype=np.int16), size=(3, 7, 11))
    values = rng.integers(-15, 16, size=rows.shape).astype(np.int32)
    encoder = constriction.stream.stack.AnsCoder()
    coder.encode_into(encoder, values, rows, 1)
    decoder = constriction.stream.stack.AnsCoder(encoder.get_compressed())
    np.testing.assert_array_equal(coder.decode_from(decoder, rows, 1), values)
    assert decoder.is_empty()


LAYOUTS = [
    "unsorted",
    "sorted",
    "all implied",
    "none implied",
    "few implied",  # sorted along with the coded rows (see _SORT_ALL_ABOVE)
    "few implied, sorted",
    "most implied",  # gathered out before sorting
]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_implied_zero_rows_are_not_coded_and_decode_as_zero(coder, layout):
    """Values of rows below ``zero_rows`` cost no bits and decode as 0; the rest are exact,
    whichever way the coder drops the implied zeros."""
    import constriction

    from shared.entropy.coder import GroupedCoder, words_to_bytes

    skipping, plain_coder = GroupedCoder(coder.tables, zero_rows=2), GroupedCoder(coder.tables)
    rng = np.random.default_rng(11)
    rows = {
        "unsorted": rng.integers(0, 5, size=(3, 7, 11)),
        "sorted": np.sort(rng.integers(0, 5, size=231)),
        "all implied": rng.integers(0, 2, size=50),
        "none implied": rng.integers(2, 5, size=50),
        "few implied": rng.choice(5, size=(4, 9, 9), p=[0.1, 0.1, 0.3, 0.3, 0.2]),
        "few implied, sorted": np.sort(rng.choice(5, size=300, p=[0.1, 0.1, 0.3, 0.3, 0.2])),
        "most implied": rng.choice(5, size=(4, 9, 9), p=[0.4, 0.4, 0.1, 0.05, 0.05]),
    }[layout].astype(np.int16)
    values = rng.integers(-15, 16, size=rows.shape).astype(np.int32)
    implied = rows < 2
    encoder = constriction.stream.stack.AnsCoder()
    skipping.encode_into(encoder, values, rows, 1)
    # The same payload as coding only the other values with the plain coder.
    plain = constriction.stream.stack.AnsCoder()
    plain_coder.encode_into(plain, values[~implied], rows[~implied], 1)
    assert words_to_bytes(encoder) == words_to_bytes(plain)
    decoder = constriction.stream.stack.AnsCoder(encoder.get_compressed())
    decoded = skipping.decode_from(decoder, rows, 1)
    assert decoder.is_empty()
    np.testing.assert_array_equal(decoded, np.where(implied, 0, values))
    expected_bits = plain_coder.information_bits(values[~implied], rows[~implied], 1)
    assert skipping.information_bits(values, rows, 1) == pytest.approx(expected_bits)


def test_zero_rows_outside_the_tables_are_refused(coder):
    from shared.entropy.coder import GroupedCoder

    with pytest.raises(ValueError, match="zero_rows"):
        GroupedCoder(coder.tables, zero_rows=6)


@pytest.mark.parametrize("size", [1, 2, 3, 17, 1000, 4097])
def test_bounds_through_an_order_match_searchsorted_of_the_sorted_rows(size):
    """The coder finds its run boundaries without gathering the sorted rows; they must be
    exactly ``searchsorted`` of them, absent rows and rows past the last included."""
    from shared.entropy.coder import _bounds_through

    rng = np.random.default_rng(size)
    rows = rng.choice(np.array([0, 2, 3, 7], dtype=np.int16), size=size)
    order = np.argsort(rows, kind="stable")
    targets = np.arange(10, dtype=np.int16)
    np.testing.assert_array_equal(
        _bounds_through(rows, order, targets), np.searchsorted(rows[order], targets)
    )


BLOCK_LAYOUTS = {
    "unsorted": [4, 1, 3, 1, 2, 4, 0],
    "sorted": [0, 1, 1, 2, 4],
    "one block": [3],
    "no blocks": [],
    "all implied": [0, 1, 1, 0],
    "implied first, rest sorted": [0, 1, 2, 3, 4],
}


@pytest.mark.parametrize("zero_rows", [0, 2])
@pytest.mark.parametrize("size", [0, 1, 17])
@pytest.mark.parametrize("layout", BLOCK_LAYOUTS)
def test_block_coding_is_the_per_value_coding_without_the_sort(coder, layout, size, zero_rows):
    """``encode_blocks_into`` writes exactly the bytes ``encode_into`` writes for the same
    rows spread over each block, escapes included; ``decode_blocks_from`` inverts it."""
    import constriction

    from shared.entropy.coder import GroupedCoder, words_to_bytes

    grouped = GroupedCoder(coder.tables, zero_rows=zero_rows)
    block_rows = np.array(BLOCK_LAYOUTS[layout], dtype=np.int64)
    rng = np.random.default_rng(size + 7 * zero_rows)
    values = rng.integers(-15, 16, size=(block_rows.size, size)).astype(np.int32)
    if values.size:
        values.flat[0] = 40_000  # an escape
    by_blocks, by_values = (
        constriction.stream.stack.AnsCoder(),
        constriction.stream.stack.AnsCoder(),
    )
    grouped.encode_blocks_into(by_blocks, values, block_rows, 1)
    rows = np.broadcast_to(block_rows[:, None], values.shape)
    grouped.encode_into(by_values, values, rows, 1)
    assert words_to_bytes(by_blocks) == words_to_bytes(by_values)
    decoder = constriction.stream.stack.AnsCoder(by_blocks.get_compressed())
    decoded = grouped.decode_blocks_from(decoder, block_rows, size, 1)
    assert decoder.is_empty() and decoded.shape == values.shape
    np.testing.assert_array_equal(decoded, np.where(rows < zero_rows, 0, values))


def test_block_coding_refuses_rows_outside_the_tables_and_mismatched_shapes(coder):
    import constriction

    ans = constriction.stream.stack.AnsCoder()
    with pytest.raises(ValueError, match="outside the tables"):
        coder.encode_blocks_into(ans, np.zeros((2, 3), np.int32), np.array([1, 5]), 0)
    with pytest.raises(ValueError, match="outside the tables"):
        coder.encode_blocks_into(ans, np.zeros((2, 3), np.int32), np.array([1, 65536 + 3]), 0)
    with pytest.raises(ValueError, match="one row per block"):
        coder.encode_blocks_into(ans, np.zeros((2, 3), np.int32), np.array([1, 2, 3]), 0)
    with pytest.raises(ValueError, match="outside the tables"):
        coder.decode_blocks_from(ans, np.array([-1]), 3, 0)
    with pytest.raises(ValueError, match="must be"):
        coder.decode_blocks_from(ans, np.array([[1, 2]]), 3, 0)
