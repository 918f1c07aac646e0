"""The checks on reference PNGs before they are decoded (``receiver.reference``)."""

import zlib

import cv2
import numpy as np
import pytest

from receiver.reference import PNG_SIGNATURE, image_data, is_safe_reference, png_size
from tests.conftest import natural_like_image


def chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(body, zlib.crc32(kind))
    return len(body).to_bytes(4, "big") + kind + body + crc.to_bytes(4, "big")


def png_of(raw: bytes, width: int, height: int, header=(8, 2, 0, 0, 0)) -> bytes:
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes(header)
    idat = zlib.compress(raw, 9)
    return PNG_SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_the_senders_png_passes_and_decodes():
    rgb = natural_like_image(48, 64)
    ok, png = cv2.imencode(".png", rgb, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    assert ok and png_size(png.tobytes()) == (64, 48)
    assert is_safe_reference(png.tobytes(), 64, 48)
    assert not is_safe_reference(png.tobytes(), 64, 47)


def test_exactly_the_right_amount_of_image_data_passes():
    width, height = 64, 48
    raw = bytes(height * (1 + 3 * width))
    assert is_safe_reference(png_of(raw, width, height), width, height)
    decoded = cv2.imdecode(np.frombuffer(png_of(raw, width, height), np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (height, width, 3)


@pytest.mark.parametrize("factor", [1.001, 2, 1000])
def test_image_data_that_inflates_past_the_header_is_refused(factor):
    # A decompression bomb: the header says 64x48, the data inflates to far more.
    width, height = 64, 48
    raw = bytes(int(factor * height * (1 + 3 * width)) + 1)
    assert not is_safe_reference(png_of(raw, width, height), width, height)


def test_too_little_image_data_and_other_png_kinds_are_refused():
    width, height = 16, 8
    raw = bytes(height * (1 + 3 * width))
    assert not is_safe_reference(png_of(raw[:-1], width, height), width, height)
    for header in [(16, 2, 0, 0, 0), (8, 0, 0, 0, 0), (8, 6, 0, 0, 0), (8, 2, 0, 0, 1)]:
        assert not is_safe_reference(png_of(raw, width, height, header), width, height)


def test_broken_chunk_structures_are_refused():
    width, height = 16, 8
    good = png_of(bytes(height * (1 + 3 * width)), width, height)
    assert is_safe_reference(good, width, height)
    assert image_data(good[:-12]) is None  # no IEND
    assert not is_safe_reference(good[:-12], width, height)
    assert not is_safe_reference(good[:40], width, height)  # IDAT runs past the end
    garbage = good[:33] + chunk(b"IDAT", b"not deflate") + chunk(b"IEND", b"")
    assert not is_safe_reference(garbage, width, height)
    assert not is_safe_reference(b"", width, height) and png_size(b"GIF89a") is None
