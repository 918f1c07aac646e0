import numpy as np
import pytest

from shared.entropy.tables import TABLE_TOTAL, FrozenTables, quantize_pmf, tables_from_cdf


@pytest.mark.parametrize("pmf", [[1.0], [0.5, 0.5], [1e-12, 1.0, 1e-12], np.random.rand(300)])
def test_quantize_pmf_sums_and_is_positive(pmf):
    freqs = quantize_pmf(np.asarray(pmf))
    assert freqs.sum() == TABLE_TOTAL
    assert freqs.min() >= 1


def test_quantize_pmf_tracks_probabilities():
    pmf = np.array([0.7, 0.2, 0.1])
    freqs = quantize_pmf(pmf)
    assert np.allclose(freqs / TABLE_TOTAL, pmf, atol=1e-4)


def test_tables_from_logistic_cdf_cover_the_mass():
    radius = 100
    points = np.arange(-radius, radius + 2) - 0.5

    def cdf(level):
        scale = np.array([[1.0], [5.0]]) * (level + 1)
        return 1 / (1 + np.exp(-points[None, :] / scale))

    tables = tables_from_cdf(cdf, levels=2, channels=2, search_radius=radius)
    assert tables.lengths[0, 1] > tables.lengths[0, 0]  # wider density, wider support
    assert tables.lengths[1, 0] > tables.lengths[0, 0]
    for k in range(2):
        for c in range(2):
            assert tables.row(k, c).sum() == TABLE_TOTAL
            assert tables.offsets[k, c] <= 0 < tables.offsets[k, c] + tables.lengths[k, c]


def test_validate_rejects_broken_rows():
    freqs = np.zeros((1, 1, 4), dtype=np.int32)
    freqs[0, 0, :3] = [TABLE_TOTAL - 2, 1, 0]  # escape symbol with zero frequency
    tables = FrozenTables(freqs, np.zeros((1, 1), np.int32), np.full((1, 1), 2, np.int32))
    with pytest.raises(ValueError):
        tables.validate()


def test_tables_round_trip_through_their_unpadded_tensor_form():
    from shared.entropy.gaussian import gaussian_tables, scale_table

    tables = gaussian_tables(scale_table(8))
    tensors = tables.to_tensors("t/")
    assert tensors["t/freqs"].ndim == 1
    assert tensors["t/freqs"].size == int((tables.lengths + 1).sum())
    again = FrozenTables.from_tensors(tensors, "t/")
    np.testing.assert_array_equal(again.freqs, tables.freqs)
    tensors["t/freqs"] = tensors["t/freqs"][:-1]
    with pytest.raises(ValueError):
        FrozenTables.from_tensors(tensors, "t/")
