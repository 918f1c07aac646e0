"""Exact entropy coding of integer latents with constriction's ANS coder.

Bitstream of one latent tensor (decode order):

1. for each channel ``c = 0 .. C-1``: ``h * w`` symbols in raster order, coded with the
   categorical model of table row ``(level, c)``; symbol ``v - offset`` for in-support values,
   the escape index ``length`` otherwise;
2. for each escaped value, in the same order: its zig-zag code as two 16-bit halves (high
   half first) with a uniform model.

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


class CorruptPayload(ValueError):
    """The payload is not a valid bitstream for this model and shape."""


def _zigzag(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.int64)
    return np.where(values >= 0, 2 * values, -2 * values - 1).astype(np.uint64)


def _unzigzag(codes: np.ndarray) -> np.ndarray:
    codes = codes.astype(np.int64)
    return np.where(codes % 2 == 0, codes // 2, -(codes + 1) // 2)


class LatentCoder:
    """Codes ``(C, h, w)`` ``int32`` latents with frozen tables.

    The constriction models are built once here (the explicit "update" step); encoding and
    decoding only index into them, so no probability is computed per frame.
    """

    def __init__(self, tables: FrozenTables) -> None:
        tables.validate()
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

    def _check(self, level: int, channels: int) -> None:
        if not 0 <= level < self.tables.levels:
            raise ValueError(f"quality level {level} outside 0..{self.tables.levels - 1}")
        if channels != self.tables.channels:
            raise ValueError(f"expected {self.tables.channels} latent channels, got {channels}")

    def information_bits(self, latents: np.ndarray, level: int) -> float:
        """The tables' information content of ``latents`` in bits: ``sum(-log2 p)`` over all
        symbols plus 32 bits per escaped value; the ideal size that ``encode`` approaches."""
        self._check(level, latents.shape[0])
        flat = np.clip(latents.astype(np.int64), -LATENT_LIMIT, LATENT_LIMIT)
        flat = flat.reshape(latents.shape[0], -1)
        bits = 0.0
        for c in range(flat.shape[0]):
            row = self.tables.row(level, c)
            symbols = flat[c] - int(self.tables.offsets[level, c])
            length = int(self.tables.lengths[level, c])
            escaped = (symbols < 0) | (symbols >= length)
            symbols = np.where(escaped, length, symbols)
            bits += float(-np.log2(row[symbols] / row.sum()).sum()) + 32.0 * int(escaped.sum())
        return bits

    def encode(self, latents: np.ndarray, level: int) -> bytes:
        """Compress ``latents`` of shape ``(C, h, w)`` (any integer dtype) to bytes."""
        if latents.ndim != 3:
            raise ValueError("latents must have shape (C, h, w)")
        self._check(level, latents.shape[0])
        latents = np.clip(latents.astype(np.int64), -LATENT_LIMIT, LATENT_LIMIT)
        offsets = self.tables.offsets[level].astype(np.int64)[:, None]
        lengths = self.tables.lengths[level].astype(np.int64)[:, None]
        flat = latents.reshape(latents.shape[0], -1)
        symbols = flat - offsets
        escaped = (symbols < 0) | (symbols >= lengths)
        symbols = np.where(escaped, lengths, symbols).astype(np.int32)

        coder = constriction.stream.stack.AnsCoder()
        escapes = flat[escaped]  # channel-major raster order, as the decoder meets them
        if escapes.size:
            codes = _zigzag(escapes)
            halves = np.stack([codes >> 16, codes & (_HALF - 1)], axis=1).reshape(-1)
            coder.encode_reverse(halves.astype(np.int32), self._uniform)
        models = self._models[level]
        for c in range(flat.shape[0] - 1, -1, -1):
            coder.encode_reverse(symbols[c], models[c])
        return coder.get_compressed().astype("<u4").tobytes()

    def decode(self, data: bytes, level: int, shape: tuple[int, int, int]) -> np.ndarray:
        """Decompress bytes from ``encode`` into ``int32`` latents of ``shape = (C, h, w)``.

        Raises ``CorruptPayload`` when the bytes cannot be this bitstream (wrong length,
        trailing data after the last symbol). A payload that decodes without such a sign is
        returned as decoded; integrity is the wire format's checksum's job.
        """
        channels, height, width = shape
        self._check(level, channels)
        if len(data) % 4:
            raise CorruptPayload("payload length is not a multiple of 4 bytes")
        words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        try:
            decoder = constriction.stream.stack.AnsCoder(words)
            models = self._models[level]
            count = height * width
            symbols = np.empty((channels, count), dtype=np.int64)
            for c in range(channels):
                symbols[c] = decoder.decode(models[c], count)
            lengths = self.tables.lengths[level].astype(np.int64)[:, None]
            escaped = symbols == lengths
            values = symbols + self.tables.offsets[level].astype(np.int64)[:, None]
            n_escapes = int(escaped.sum())
            if n_escapes:
                halves = decoder.decode(self._uniform, 2 * n_escapes).astype(np.uint64)
                codes = (halves[0::2] << 16) | halves[1::2]
                values[escaped] = _unzigzag(codes)
            leftover = not decoder.is_empty()
        except (ValueError, RuntimeError, AssertionError) as error:
            raise CorruptPayload(f"entropy decoding failed: {error}") from error
        if leftover:
            raise CorruptPayload("payload has data left after the last symbol")
        return values.reshape(shape).astype(np.int32)
