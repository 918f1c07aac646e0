"""Integer frequency tables frozen from a learned density.

A table set describes, for every quality level ``k`` and latent channel ``c``, a contiguous
support of integers ``[offset[k, c], offset[k, c] + length[k, c])`` plus one *escape* symbol
for every value outside it. ``freqs[k, c, :length + 1]`` holds positive integer frequencies
that sum to exactly ``2**TABLE_PRECISION``; index ``length`` is the escape symbol. Entries
past ``length + 1`` are zero padding.

Invariants (checked by ``validate``): every used frequency is >= 1, each row sums to
``2**TABLE_PRECISION``, ``1 <= length <= MAX_SUPPORT``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TABLE_PRECISION = 16
TABLE_TOTAL = 1 << TABLE_PRECISION
MAX_SUPPORT = 2048
TAIL_MASS = 1e-7


@dataclass(frozen=True)
class FrozenTables:
    """Integer entropy tables; arrays are ``int32`` numpy arrays.

    Attributes:
        freqs: ``(K, C, MAX_LEN)`` frequencies, escape symbol at index ``length``.
        offsets: ``(K, C)`` smallest latent value inside the support.
        lengths: ``(K, C)`` number of in-support values.
    """

    freqs: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray

    @property
    def levels(self) -> int:
        return int(self.freqs.shape[0])

    @property
    def channels(self) -> int:
        return int(self.freqs.shape[1])

    def validate(self) -> None:
        """Raise ``ValueError`` when an invariant of the module docstring does not hold."""
        levels, channels, width = self.freqs.shape
        if self.offsets.shape != (levels, channels) or self.lengths.shape != (levels, channels):
            raise ValueError("table offsets/lengths do not match the frequency array")
        if (
            self.lengths.min() < 1
            or self.lengths.max() > MAX_SUPPORT
            or self.lengths.max() + 1 > width
        ):
            raise ValueError("table support length out of range")
        for k in range(levels):
            for c in range(channels):
                row = self.freqs[k, c, : self.lengths[k, c] + 1]
                if row.min() < 1 or int(row.sum()) != TABLE_TOTAL:
                    raise ValueError(f"table row ({k}, {c}) is not a valid distribution")

    def to_tensors(self, prefix: str) -> dict[str, np.ndarray]:
        """``{prefix}freqs`` (the used entries of every row, ``length + 1`` each, rows in
        (level, channel) order, 1-D: padding is not stored), ``{prefix}offsets``,
        ``{prefix}lengths``; all ``int32``."""
        rows = [
            self.freqs[k, c, : self.lengths[k, c] + 1]
            for k in range(self.levels)
            for c in range(self.channels)
        ]
        return {
            f"{prefix}freqs": np.concatenate(rows).astype(np.int32),
            f"{prefix}offsets": self.offsets.astype(np.int32),
            f"{prefix}lengths": self.lengths.astype(np.int32),
        }

    @classmethod
    def from_tensors(cls, tensors: dict[str, np.ndarray], prefix: str) -> FrozenTables:
        """Inverse of ``to_tensors`` (also reads the padded ``(K, C, W)`` layout of model
        files of format version 1); raises ``KeyError`` or ``ValueError`` when invalid."""
        freqs = tensors[f"{prefix}freqs"]
        offsets = tensors[f"{prefix}offsets"]
        lengths = tensors[f"{prefix}lengths"]
        if offsets.ndim != 2 or lengths.shape != offsets.shape:
            raise ValueError("table offsets/lengths must be (levels, channels) arrays")
        if freqs.ndim == 1:
            used = lengths.astype(np.int64) + 1
            if lengths.min(initial=1) < 1 or lengths.max(initial=1) > MAX_SUPPORT:
                raise ValueError("table support length out of range")
            if int(used.sum()) != freqs.size:
                raise ValueError("table frequencies do not match the table lengths")
            padded = np.zeros((*lengths.shape, int(used.max())), dtype=np.int32)
            mask = np.arange(padded.shape[2]) < used[..., None]
            padded[mask] = freqs
            freqs = padded
        tables = cls(freqs=freqs, offsets=offsets, lengths=lengths)
        tables.validate()
        return tables

    def row(self, level: int, channel: int) -> np.ndarray:
        """Frequencies of one channel including the escape symbol, as ``int64``."""
        return self.freqs[level, channel, : self.lengths[level, channel] + 1].astype(np.int64)


def quantize_pmf(pmf: np.ndarray, total: int = TABLE_TOTAL) -> np.ndarray:
    """Integer frequencies >= 1 that sum to ``total`` and approximate ``pmf`` (1-D, >= 0)."""
    pmf = np.asarray(pmf, dtype=np.float64)
    pmf = np.maximum(pmf, 0.0)
    if pmf.sum() <= 0:
        pmf = np.ones_like(pmf)
    if len(pmf) > total:
        raise ValueError("more symbols than frequency units")
    spare = total - len(pmf)
    freqs = 1 + np.floor(pmf / pmf.sum() * spare).astype(np.int64)
    # Hand the rounding remainder to the symbols that lost the most by flooring.
    remainder = total - int(freqs.sum())
    if remainder > 0:
        loss = pmf / pmf.sum() * spare - (freqs - 1)
        freqs[np.argsort(-loss, kind="stable")[:remainder]] += 1
    return freqs


def tables_from_cdf(cdf_fn, levels: int, channels: int, search_radius: int = 1024) -> FrozenTables:
    """Freeze tables from ``cdf_fn(level) -> (C, 2 * search_radius + 2)`` CDF values.

    ``cdf_fn`` evaluates the CDF at the half-integers ``-R - 0.5, ..., R + 0.5``. The support
    of each channel is the smallest integer range whose two tails each hold less than
    ``TAIL_MASS``; the tails together become the escape symbol's probability.
    """
    grid = np.arange(-search_radius, search_radius + 1)
    rows: list[list[np.ndarray]] = []
    offsets = np.zeros((levels, channels), dtype=np.int32)
    lengths = np.zeros((levels, channels), dtype=np.int32)
    for k in range(levels):
        cdf = np.asarray(cdf_fn(k), dtype=np.float64)
        level_rows = []
        for c in range(channels):
            edges = cdf[c]
            pmf = np.diff(edges)
            lower_tail = edges[:-1]  # mass below each integer's lower edge
            upper_tail = 1.0 - edges[1:]
            inside = np.nonzero((lower_tail >= TAIL_MASS) | (grid == 0))[0]
            first = int(inside[0]) if len(inside) else search_radius
            inside = np.nonzero((upper_tail >= TAIL_MASS) | (grid == 0))[0]
            last = int(inside[-1]) if len(inside) else search_radius
            first = max(first - 1, 0)
            last = min(last + 1, len(grid) - 1)
            if last - first + 1 > MAX_SUPPORT:
                centre = (first + last) // 2
                first, last = centre - MAX_SUPPORT // 2, centre + MAX_SUPPORT // 2 - 1
            escape = edges[first] + (1.0 - edges[last + 1])
            row = quantize_pmf(np.append(pmf[first : last + 1], max(escape, 0.0)))
            offsets[k, c] = grid[first]
            lengths[k, c] = last - first + 1
            level_rows.append(row)
        rows.append(level_rows)
    width = int(lengths.max()) + 1
    freqs = np.zeros((levels, channels, width), dtype=np.int32)
    for k in range(levels):
        for c in range(channels):
            freqs[k, c, : len(rows[k][c])] = rows[k][c]
    tables = FrozenTables(freqs=freqs, offsets=offsets, lengths=lengths)
    tables.validate()
    return tables
