"""Golden vectors: any change to the bitstream, the shipped tables or the wire format shows.

If one of these fails after an intended format change, bump ``wire.PROTOCOL_VERSION`` or the
model file, then regenerate with ``tests/expected/make_expected.py``.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from shared import wire
from shared.codec import ImageCodec
from tests.expected.make_expected import golden_latents, golden_message

EXPECTED = json.loads((Path(__file__).parents[1] / "expected" / "bitstreams.json").read_text())


@pytest.fixture(scope="module")
def codec() -> ImageCodec:
    return ImageCodec.load("fast", "cpu")


def test_shipped_model_is_the_pinned_one(codec):
    assert codec.model_file.content_sha256 == EXPECTED["model_sha256"]


@pytest.mark.parametrize("level", sorted(EXPECTED["payloads"], key=int))
def test_payload_md5_and_exact_decode(codec, level):
    level_index = int(level)
    latents = golden_latents(codec, level_index)
    payload = codec.coder.encode(latents, level_index)
    assert len(payload) == EXPECTED["payloads"][level]["bytes"]
    assert hashlib.md5(payload).hexdigest() == EXPECTED["payloads"][level]["md5"]
    decoded = codec.coder.decode(payload, level_index, latents.shape)
    np.testing.assert_array_equal(decoded, latents)


def test_wire_frame_md5():
    assert EXPECTED["protocol_version"] == wire.PROTOCOL_VERSION
    assert hashlib.md5(b"".join(golden_message())).hexdigest() == EXPECTED["wire_frame_md5"]
