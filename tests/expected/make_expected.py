"""Regenerate ``bitstreams.json``: md5 sums that pin the bitstream and wire formats.

Run only when a format change is intended (and bump the protocol or model-file version):
``.venv/bin/python tests/expected/make_expected.py``. The inputs are integer latents from a
seeded NumPy generator (identical on every platform), so the pinned sums test the entropy
coder, the tables and (for the hyperprior) the integer prior network, not the floating-point
transforms. Every model of the zoo is pinned.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import constriction
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from shared import wire  # noqa: E402
from shared.codec import ImageCodec, Latents  # noqa: E402
from shared.entropy.coder import words_to_bytes  # noqa: E402
from shared.inter import GainRescaler, InterCoder  # noqa: E402
from shared.registry import ZOO  # noqa: E402

EXPECTED = Path(__file__).with_name("bitstreams.json")
LATENT_HW = (9, 11)


def golden_latents(codec: ImageCodec, level: int) -> Latents:
    """Laplacian integers with some outliers that escape; hyper-latents for the hyperprior."""
    rng = np.random.default_rng(1000 + level)
    channels = codec.model.config.latent
    latents = np.round(rng.laplace(scale=1.5, size=(channels, *LATENT_HW))).astype(np.int64)
    latents[:, 0, 0] = rng.integers(-5000, 5000, size=channels)
    z = None
    if codec.hyper:
        shape = codec.hyper_shape(latents.shape)
        z = np.round(rng.laplace(scale=2.0, size=shape)).astype(np.int32)
        z[:, 0, 0] = rng.integers(-3000, 3000, size=shape[0])
    return Latents(latents.astype(np.int32), z)


def golden_message() -> list[bytes]:
    message = wire.FrameMessage(
        "golden",
        42,
        1_700_000_000_123_456,
        176,
        144,
        "0123456789abcdef",
        3,
        bytes(range(256)) * 2,
        kind="inter",
        slice_rows=4,
        slice_bytes=(128, 256, 128),
    )
    return wire.encode_frame(message)


def golden_residual(channels: int) -> tuple[np.ndarray, np.ndarray]:
    """A predicted slice's residual ``(C, 9, 11)`` and skip map: mostly zeros, a few
    channels active, one escape."""
    rng = np.random.default_rng(77)
    residual = np.round(rng.laplace(scale=0.8, size=(channels, *LATENT_HW))).astype(np.int64)
    residual[rng.random(channels) < 0.6] = 0
    skip = rng.random(LATENT_HW) < 0.4
    residual[:, skip] = 0
    residual[1, 0, 0] = 900 if not skip[0, 0] else residual[1, 0, 0]
    return residual, skip


def golden_inter_payload(codec: ImageCodec) -> bytes:
    residual, skip = golden_residual(codec.model.config.latent)
    coder = constriction.stream.stack.AnsCoder()
    InterCoder().encode_into(coder, residual, skip)
    return words_to_bytes(coder)


def golden_ratios_md5(codec: ImageCodec) -> str:
    """md5 of the fixed-point gain ratios between every pair of levels (pins the rescaling
    of predictions across levels)."""
    rescaler = GainRescaler(codec.model.log_gain.detach().numpy())
    ratios = [rescaler.ratio(a, b) for a in range(codec.levels) for b in range(codec.levels)]
    return hashlib.md5(np.stack(ratios).astype("<i8").tobytes()).hexdigest()


def golden_indices_md5(codec: ImageCodec, latents: Latents, level: int) -> str:
    """md5 of the hyperprior's table indices: pins the integer prior network's output."""
    indices = codec.model.table_indices(latents.z, level, latents.y.shape[1:])
    return hashlib.md5(indices.astype("<i8").tobytes()).hexdigest()


def compute_model(name: str) -> dict:
    codec = ImageCodec.load(name, "cpu")
    levels = {}
    for level in range(codec.levels):
        latents = golden_latents(codec, level)
        payload = codec.entropy_encode(latents, level)
        levels[str(level)] = {"bytes": len(payload), "md5": hashlib.md5(payload).hexdigest()}
        if codec.hyper:
            levels[str(level)]["indices_md5"] = golden_indices_md5(codec, latents, level)
    inter = golden_inter_payload(codec)
    return {
        "model_sha256": codec.model_file.content_sha256,
        "payloads": levels,
        "inter": {"bytes": len(inter), "md5": hashlib.md5(inter).hexdigest()},
        "gain_ratios_md5": golden_ratios_md5(codec),
    }


def compute() -> dict:
    message = b"".join(golden_message())
    return {
        "latent_hw": list(LATENT_HW),
        "models": {name: compute_model(name) for name in ZOO},
        "wire_frame_md5": hashlib.md5(message).hexdigest(),
        "protocol_version": wire.PROTOCOL_VERSION,
    }


if __name__ == "__main__":
    EXPECTED.write_text(json.dumps(compute(), indent=2) + "\n")
    print(f"wrote {EXPECTED}")
