"""Regenerate ``bitstreams.json``: md5 sums that pin the bitstream and wire formats.

Run only when a format change is intended (and bump the protocol or model-file version):
``.venv/bin/python tests/expected/make_expected.py``. The inputs are integer latents from a
seeded NumPy generator (identical on every platform), so the pinned sums test the entropy
coder and tables alone, not the floating-point transforms.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from shared import wire  # noqa: E402
from shared.codec import ImageCodec  # noqa: E402

EXPECTED = Path(__file__).with_name("bitstreams.json")
LATENT_HW = (9, 11)


def golden_latents(codec: ImageCodec, level: int) -> np.ndarray:
    """Laplacian integers around each channel's table, with some outliers that escape."""
    rng = np.random.default_rng(1000 + level)
    channels = codec.coder.tables.channels
    latents = np.round(rng.laplace(scale=1.5, size=(channels, *LATENT_HW))).astype(np.int64)
    latents[:, 0, 0] = rng.integers(-5000, 5000, size=channels)
    return latents.astype(np.int32)


def golden_message() -> list[bytes]:
    message = wire.FrameMessage(
        "golden", 42, 1_700_000_000_123_456, 176, 144, "0123456789abcdef", 3, bytes(range(256)) * 2
    )
    return wire.encode_frame(message)


def compute() -> dict:
    codec = ImageCodec.load("fast", "cpu")
    levels = {}
    for level in range(codec.levels):
        payload = codec.coder.encode(golden_latents(codec, level), level)
        levels[str(level)] = {"bytes": len(payload), "md5": hashlib.md5(payload).hexdigest()}
    message = b"".join(golden_message())
    return {
        "model": "fast",
        "model_sha256": codec.model_file.content_sha256,
        "latent_hw": list(LATENT_HW),
        "payloads": levels,
        "wire_frame_md5": hashlib.md5(message).hexdigest(),
        "protocol_version": wire.PROTOCOL_VERSION,
    }


if __name__ == "__main__":
    EXPECTED.write_text(json.dumps(compute(), indent=2) + "\n")
    print(f"wrote {EXPECTED}")
