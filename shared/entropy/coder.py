"""Exact entropy coding of integer latents with constriction's ANS coder.

Every value is coded with one row of a ``FrozenTables`` set; which row is the coder's
*row assignment* (the factorized prior: the value's channel; the hyperprior: the Gaussian
table its hyper-latents select). Bitstream of one set of values (decode order):

1. for each table row ``r >= zero_rows`` in ascending order: the values assigned to ``r``,
   in their raster (channel-major) order, coded with the categorical model of row
   ``(level, r)``; symbol ``v - offset`` for in-support values, the escape index
   ``length`` otherwise;
2. for each escaped value, in the same order: its zig-zag code as two 16-bit halves (high
   half first) with a uniform model.

For the factorized prior (rows = channels) this is simply channel after channel. Values of
rows below ``zero_rows`` (0 unless the coder was built with more) are not coded: they
decode as 0.

The words are little-endian ``uint32``. Latent values are clamped to ``[-LATENT_LIMIT,
LATENT_LIMIT]`` before coding; that bound is far outside anything the transforms produce
for 8-bit images, and it makes every escape fit into 32 bits, so the encoder never fails.
"""

from __future__ import annotations

import constriction
import numpy as np

from .tables import FrozenTables

LATENT_LIMIT = (1 << 30) - 1
_HALF = 1 << 16
# Above this share of coded values, sorting the implied zeros along (they sort first) is
# cheaper than gathering the coded ones out first (measured at 640x480 and 1280x720:
# 69-71% coded, sorting all 25% faster; 45-47% coded, 12-15% slower).
_SORT_ALL_ABOVE = 0.6


class CorruptPayload(ValueError):
    """The payload is not a valid bitstream for this model and shape."""


def _zigzag(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.int64)
    return np.where(values >= 0, 2 * values, -2 * values - 1).astype(np.uint64)


def _unzigzag(codes: np.ndarray) -> np.ndarray:
    codes = codes.astype(np.int64)
    return np.where(codes % 2 == 0, codes // 2, -(codes + 1) // 2)


def _bounds_through(rows: np.ndarray, order: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``np.searchsorted(rows[order], targets)`` for an ``order`` that sorts ``rows``
    (``rows.size >= 1``), without gathering ``rows[order]``: a branch-free binary search
    for all targets at once reads about ``log2(rows.size)`` values per target (a gather
    of all of them took longer than the sort's other steps)."""
    base = np.zeros(targets.size, dtype=np.intp)
    length = rows.size
    while length > 1:
        half = length // 2
        base += (rows[order[base + half]] < targets) * half
        length -= half
    return base + (rows[order[base]] < targets)


class GroupedCoder:
    """Codes integer values, each with the table row given by a row assignment.

    The constriction models are built once here (the explicit "update" step); encoding and
    decoding only index into them, so no probability is computed per frame.

    ``zero_rows``: values assigned to a row below this number are *implied zeros*: they are
    not coded at all, and decoding returns 0 for them (encoding ignores their values; a
    caller that needs its values to equal the decoder's sets them to 0 first). Meant for
    rows whose table puts almost all mass on 0, where coding a symbol buys nothing.
    """

    def __init__(self, tables: FrozenTables, zero_rows: int = 0) -> None:
        tables.validate()
        if not 0 <= zero_rows <= tables.channels:
            raise ValueError(f"zero_rows {zero_rows} outside 0..{tables.channels}")
        self.zero_rows = zero_rows
        if np.abs(tables.offsets.astype(np.int64)).max(initial=0) > LATENT_LIMIT:
            raise ValueError("table offset outside the latent range")
        self.tables = tables
        categorical = constriction.stream.model.Categorical
        self._models = [
            [
                categorical(tables.row(k, c).astype(np.float64), perfect=False)
                for c in range(tables.channels)
            ]
            for k in range(tables.levels)
        ]
        self._uniform = constriction.stream.model.Uniform(_HALF)
        # Per level, int32 copies for the per-symbol gathers (narrow types: half the memory
        # traffic of int64; offsets and lengths are far inside int32, see ``validate``).
        self._offsets = tables.offsets.astype(np.int32)
        self._lengths = tables.lengths.astype(np.int32)

    def check_level(self, level: int) -> None:
        if not 0 <= level < self.tables.levels:
            raise ValueError(f"quality level {level} outside 0..{self.tables.levels - 1}")

    def _check_rows(self, rows: np.ndarray) -> None:
        """Raise ``ValueError`` unless every row is one of the tables' (checked before any
        narrowing cast, which could wrap a wrong row into range)."""
        if rows.size and not 0 <= rows.min() <= rows.max() < self.tables.channels:
            raise ValueError("row assignment outside the tables")

    def _groups(self, rows: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """Coding order (positions of the coded values, a stable sort by row; ``None`` when
        that is every position in order), the coded rows present (ascending) and their
        counts: the implied zeros left out, a radix sort of the 16-bit rows left, then the
        run boundaries of the sorted rows."""
        self._check_rows(rows)
        rows = rows.astype(np.int16, copy=False)  # table rows: far fewer than 2**15
        order = None
        skip = 0  # implied zeros at the start of the sorted rows (sorting them too)
        if self.zero_rows:
            coded = rows >= self.zero_rows
            count = int(np.count_nonzero(coded))
            if count < _SORT_ALL_ABOVE * rows.size:
                # Dropped before sorting: they can be most of the values.
                order = np.flatnonzero(coded)
                rows = rows[order]
            else:
                skip = rows.size - count  # few (or none): sorting them along is cheaper
        targets = np.arange(self.tables.channels + 1, dtype=np.int16)
        if rows.size > 1 and not bool(np.all(rows[1:] >= rows[:-1])):
            by_row = np.argsort(rows, kind="stable")
            bounds = _bounds_through(rows, by_row, targets)
            order = by_row if order is None else order[by_row]
        else:
            # Run boundaries of the sorted rows by binary search: much faster than
            # comparing neighbours over the whole array.
            bounds = np.searchsorted(rows, targets)
        if skip:
            order = np.arange(rows.size)[skip:] if order is None else order[skip:]
            bounds = np.maximum(bounds - skip, 0)
        counts = np.diff(bounds)
        present = np.flatnonzero(counts)
        return order, present, counts[present]

    def _block_groups(
        self, block_rows: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
        """``_groups`` for values in equal blocks that share a row each (``block_rows``
        ``(B,)``): the coding order as a block order (``None``: every block in order), the
        coded rows present and how many blocks each has. Sorting ``B`` rows instead of
        every value gives the same order, since a stable sort keeps each block's values in
        place and the blocks of one row in block order."""
        self._check_rows(block_rows)
        rows = block_rows.astype(np.int16, copy=False)
        order = None
        if rows.size > 1 and not bool(np.all(rows[1:] >= rows[:-1])):
            order = np.argsort(rows, kind="stable")
            rows = rows[order]
        bounds = np.searchsorted(rows, np.arange(self.tables.channels + 1, dtype=np.int16))
        if self.zero_rows:
            bounds = bounds[self.zero_rows :]
            start = int(bounds[0])
            if start:  # implied zeros: their blocks are left out
                order = np.arange(rows.size)[start:] if order is None else order[start:]
                bounds = bounds - start
        counts = np.diff(bounds)
        present = np.flatnonzero(counts) + self.zero_rows
        return order, present, counts[counts > 0]

    def _symbols(self, values: np.ndarray, present: np.ndarray, counts: np.ndarray, level: int):
        """``(values, symbols, escaped)`` of ``values`` in coding order (``counts[i]`` of
        row ``present[i]``, rows ascending): the values clamped to ``LATENT_LIMIT``
        (``int32``), their table symbols (``int32``; the escape index ``length`` outside
        the support) and the escape mask."""
        if (
            values.dtype != np.int32
            or values.min(initial=0) < -LATENT_LIMIT
            or values.max(initial=0) > LATENT_LIMIT
        ):
            values = np.clip(values, -LATENT_LIMIT, LATENT_LIMIT).astype(np.int32)
        # In coding order the rows form contiguous runs, so each run's offset and length
        # are spread by ``repeat`` (no per-symbol gathers of table data) and the whole
        # set is mapped to symbols at once.
        lengths = np.repeat(self._lengths[level][present], counts)
        symbols = values - np.repeat(self._offsets[level][present], counts)
        # One unsigned comparison catches both symbol < 0 and symbol >= length.
        escaped = symbols.view(np.uint32) >= lengths.view(np.uint32)
        np.copyto(symbols, lengths, where=escaped)
        return values, symbols, escaped

    def _coding_runs(self, values: np.ndarray, rows: np.ndarray, level: int):
        """``(values, symbols, escaped, present, counts)`` in coding order (implied zeros
        left out): see ``_symbols``; the rows present (ascending) and how many values each
        codes."""
        self.check_level(level)
        order, present, counts = self._groups(rows.ravel())
        values = values.ravel()
        if order is not None:
            values = values[order]
        return (*self._symbols(values, present, counts, level), present, counts)

    def information_bits(self, values: np.ndarray, rows: np.ndarray, level: int) -> float:
        """``sum(-log2 p)`` of the coded ``values`` plus 32 bits per escape: the ideal
        size (implied zeros cost nothing)."""
        _, symbols, escaped, present, counts = self._coding_runs(values, rows, level)
        bits = 32.0 * int(escaped.sum())
        ends = np.cumsum(counts).tolist()
        for row, count, end in zip(present.tolist(), counts.tolist(), ends, strict=True):
            table = self.tables.row(level, row)
            bits += float(-np.log2(table[symbols[end - count : end]] / table.sum()).sum())
        return bits

    def encode_into(self, coder, values: np.ndarray, rows: np.ndarray, level: int) -> None:
        """Push ``values`` (any integer dtype) with row assignment ``rows`` (same size) onto
        the ANS stack ``coder``; the decoder pops them with ``decode_from``."""
        values, symbols, escaped, present, counts = self._coding_runs(values, rows, level)
        self._push(coder, values, symbols, escaped, present, counts, level)

    def encode_blocks_into(
        self, coder, values: np.ndarray, block_rows: np.ndarray, level: int
    ) -> None:
        """``encode_into`` for ``values`` ``(B, n)`` whose row ``b`` all have the row
        ``block_rows[b]`` (e.g. one table per channel): the same bitstream, without a sort
        of every value. The decoder pops them with ``decode_blocks_from``."""
        self.check_level(level)
        if values.ndim != 2 or block_rows.shape != values.shape[:1]:
            raise ValueError("block values must be (B, n) with one row per block")
        order, present, counts = self._block_groups(block_rows)
        if order is not None:
            values = values[order]
        counts = counts * values.shape[1]  # values per row present
        values, symbols, escaped = self._symbols(values.ravel(), present, counts, level)
        self._push(coder, values, symbols, escaped, present, counts, level)

    def _push(self, coder, values, symbols, escaped, present, counts, level: int) -> None:
        """Encode one set in coding order (see ``_symbols``): the escapes first, since the
        decoder pops them last."""
        if escaped.any():
            codes = _zigzag(values[escaped])
            halves = np.stack([codes >> 16, codes & (_HALF - 1)], axis=1).reshape(-1)
            coder.encode_reverse(halves.astype(np.int32), self._uniform)
        # The Python loop only calls the coder, once per table row.
        models = self._models[level]
        ends = np.cumsum(counts).tolist()
        for row, count, end in reversed(
            list(zip(present.tolist(), counts.tolist(), ends, strict=True))
        ):
            coder.encode_reverse(symbols[end - count : end], models[row])

    def decode_from(self, decoder, rows: np.ndarray, level: int) -> np.ndarray:
        """Pop values for the row assignment ``rows``; returns ``int32`` of ``rows.shape``
        (0 at the implied zeros). Raises ``CorruptPayload`` for an escaped value outside
        ``[-LATENT_LIMIT, LATENT_LIMIT]``, which no encoder writes."""
        self.check_level(level)
        flat_rows = rows.ravel()
        order, present, counts = self._groups(flat_rows)
        values = self._pop(decoder, present, counts, level)
        if order is not None:
            out = np.zeros(flat_rows.size, dtype=values.dtype)
            out[order] = values
            values = out
        return values.reshape(rows.shape)

    def decode_blocks_from(
        self, decoder, block_rows: np.ndarray, size: int, level: int
    ) -> np.ndarray:
        """Pop what ``encode_blocks_into`` pushed: ``int32`` ``(B, size)`` for
        ``block_rows`` ``(B,)`` (0 in blocks of implied-zero rows)."""
        self.check_level(level)
        if block_rows.ndim != 1 or size < 0:
            raise ValueError("block rows must be (B,) and the block size >= 0")
        order, present, counts = self._block_groups(block_rows)
        values = self._pop(decoder, present, counts * size, level)
        values = values.reshape(int(counts.sum()), size)
        if order is None:
            return values
        out = np.zeros((block_rows.size, size), dtype=values.dtype)
        out[order] = values
        return out

    def encode_channels_into(self, coder, latents: np.ndarray, level: int) -> None:
        """Push ``latents`` ``(C, ...)``, channel ``c`` with row ``c`` (``encode_into`` with
        ``channel_rows``, without sorting anything)."""
        channels = latents.shape[0]
        values = latents.reshape(channels, -1)
        self.encode_blocks_into(coder, values, np.arange(channels), level)

    def decode_channels_from(self, decoder, shape: tuple[int, ...], level: int) -> np.ndarray:
        """Pop what ``encode_channels_into`` pushed: ``int32`` latents of ``shape``."""
        size = int(np.prod(shape[1:]))
        return self.decode_blocks_from(decoder, np.arange(shape[0]), size, level).reshape(shape)

    def _pop(self, decoder, present: np.ndarray, counts: np.ndarray, level: int) -> np.ndarray:
        """The values of one set in coding order (``counts[i]`` of row ``present[i]``)."""
        models = self._models[level]
        runs = [
            decoder.decode(models[row], count)
            for row, count in zip(present.tolist(), counts.tolist(), strict=True)
        ]
        symbols = np.concatenate(runs) if runs else np.empty(0, dtype=np.int32)
        values = symbols + np.repeat(self._offsets[level][present], counts)
        positions = np.flatnonzero(symbols == np.repeat(self._lengths[level][present], counts))
        if positions.size:
            halves = decoder.decode(self._uniform, 2 * positions.size).astype(np.uint64)
            escaped = _unzigzag((halves[0::2] << 16) | halves[1::2])
            if np.abs(escaped).max() > LATENT_LIMIT:
                raise CorruptPayload("escaped value outside the latent range")
            values[positions] = escaped
        return values


DECODE_ERRORS = (ValueError, RuntimeError, AssertionError)


def words_to_bytes(coder) -> bytes:
    return coder.get_compressed().astype("<u4").tobytes()


def bytes_to_decoder(data: bytes):
    if len(data) % 4:
        raise CorruptPayload("payload length is not a multiple of 4 bytes")
    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    try:
        return constriction.stream.stack.AnsCoder(words)
    except DECODE_ERRORS as error:  # e.g. a last word of zero, which no encoder writes
        raise CorruptPayload(f"not an ANS bitstream: {error}") from error


def decode_payload(data: bytes, pop):
    """Run ``pop(decoder)`` on an ANS decoder over ``data`` and return its result; raises
    ``CorruptPayload`` when the words cannot be decoded or data is left after ``pop``."""
    decoder = bytes_to_decoder(data)
    try:
        result = pop(decoder)
        leftover = not decoder.is_empty()
    except DECODE_ERRORS as error:
        raise CorruptPayload(f"entropy decoding failed: {error}") from error
    if leftover:
        raise CorruptPayload("payload has data left after the last symbol")
    return result


class LatentCoder(GroupedCoder):
    """Factorized prior: codes ``(C, h, w)`` latents, channel ``c`` with table row ``c``."""

    def _check(self, level: int, channels: int) -> None:
        self.check_level(level)
        if channels != self.tables.channels:
            raise ValueError(f"expected {self.tables.channels} latent channels, got {channels}")

    @staticmethod
    def channel_rows(shape: tuple[int, ...]) -> np.ndarray:
        channels = shape[0]
        return np.broadcast_to(np.arange(channels).reshape(-1, 1, 1), shape)

    def information_bits(self, latents: np.ndarray, level: int) -> float:  # type: ignore[override]
        """The tables' information content of ``latents`` in bits: ``sum(-log2 p)`` over all
        symbols plus 32 bits per escaped value; the ideal size that ``encode`` approaches."""
        self._check(level, latents.shape[0])
        return super().information_bits(latents, self.channel_rows(latents.shape), level)

    def encode(self, latents: np.ndarray, level: int) -> bytes:
        """Compress ``latents`` of shape ``(C, h, w)`` (any integer dtype) to bytes."""
        if latents.ndim != 3:
            raise ValueError("latents must have shape (C, h, w)")
        self._check(level, latents.shape[0])
        coder = constriction.stream.stack.AnsCoder()
        self.encode_channels_into(coder, latents, level)
        return words_to_bytes(coder)

    def decode(self, data: bytes, level: int, shape: tuple[int, int, int]) -> np.ndarray:
        """Decompress bytes from ``encode`` into ``int32`` latents of ``shape = (C, h, w)``.

        Raises ``CorruptPayload`` when the bytes cannot be this bitstream (wrong length,
        trailing data after the last symbol). A payload that decodes without such a sign is
        returned as decoded; integrity is the wire format's checksum's job.
        """
        self._check(level, shape[0])
        return decode_payload(
            data, lambda decoder: self.decode_channels_from(decoder, shape, level)
        )
