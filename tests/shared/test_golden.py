"""Golden vectors: any change to the bitstream, the shipped tables or the wire format shows.

If one of these fails after an intended format change, bump ``wire.PROTOCOL_VERSION`` or the
model file, then regenerate with ``tests/expected/make_expected.py``.
"""

import functools
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from shared import wire
from shared.codec import ImageCodec
from shared.entropy.coder import decode_payload
from shared.entropy.gaussian import IMPLIED_ZERO_ROWS
from shared.inter import InterCoder
from shared.registry import ZOO
from tests.expected.make_expected import (
    golden_indices_md5,
    golden_inter_payload,
    golden_latents,
    golden_message,
    golden_ratios_md5,
    golden_residual,
)

EXPECTED = json.loads((Path(__file__).parents[1] / "expected" / "bitstreams.json").read_text())
CASES = [(name, level) for name, entry in EXPECTED["models"].items() for level in entry["payloads"]]


@functools.cache
def codec(name: str) -> ImageCodec:
    return ImageCodec.load(name, "cpu")


def test_every_zoo_model_is_pinned():
    assert set(EXPECTED["models"]) == set(ZOO)
    for name, entry in EXPECTED["models"].items():
        assert codec(name).model_file.content_sha256 == entry["model_sha256"]
        assert len(entry["payloads"]) == codec(name).levels


@pytest.mark.parametrize(("name", "level"), CASES)
def test_payload_md5_and_exact_decode(name, level):
    model, level_index = codec(name), int(level)
    expected = EXPECTED["models"][name]["payloads"][level]
    latents = golden_latents(model, level_index)
    wanted = latents.y.copy()
    if model.hyper:
        assert golden_indices_md5(model, latents, level_index) == expected["indices_md5"]
        indices = model.model.table_indices(latents.z, level_index, latents.y.shape[1:])
        implied = indices < IMPLIED_ZERO_ROWS
        assert np.count_nonzero(wanted[implied]) > 100  # the golden latents exercise them
        wanted[implied] = 0
    payload = model.entropy_encode(latents, level_index)
    assert len(payload) == expected["bytes"]
    assert hashlib.md5(payload).hexdigest() == expected["md5"]
    np.testing.assert_array_equal(latents.y, wanted)  # the encoder's copy: the decoder's
    decoded = model.entropy_decode(payload, level_index, latents.y.shape)
    np.testing.assert_array_equal(decoded.y, wanted)
    if model.hyper:
        np.testing.assert_array_equal(decoded.z, latents.z)


def test_wire_frame_md5():
    assert EXPECTED["protocol_version"] == wire.PROTOCOL_VERSION
    assert hashlib.md5(b"".join(golden_message())).hexdigest() == EXPECTED["wire_frame_md5"]


@pytest.mark.parametrize("name", sorted(EXPECTED["models"]))
def test_predicted_frame_payload_and_gain_ratios(name):
    model = codec(name)
    expected = EXPECTED["models"][name]
    payload = golden_inter_payload(model)
    assert len(payload) == expected["inter"]["bytes"]
    assert hashlib.md5(payload).hexdigest() == expected["inter"]["md5"]
    residual, _ = golden_residual(model.model.config.latent)
    decoded = decode_payload(payload, lambda d: InterCoder().decode_from(d, *residual.shape))
    np.testing.assert_array_equal(decoded, residual)
    assert golden_ratios_md5(model) == expected["gain_ratios_md5"]
