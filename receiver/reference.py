"""Checks on the sender's reference PNGs before they are decoded.

A reference (``wire.ReferenceMessage``) is the original frame as the sender's OpenCV writes
it: an 8-bit RGB, non-interlaced PNG. Its header can be read without decoding, but its
compressed image data can inflate to far more than the header promises (a 4 MB message
inflating to 4 GB took 9 s in ``cv2.imdecode``). So the receiver accepts only that one
kind of PNG and inflates its image data once, stopping one byte past the exact size such
an image has (``height * (1 + 3 * width)`` bytes: a filter byte per row, then RGB).
"""

from __future__ import annotations

import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_RGB8 = (8, 2, 0, 0, 0)  # bit depth, colour type (RGB), compression, filter, interlace


def png_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a PNG's IHDR chunk, or ``None`` when it is not a PNG."""
    if len(data) < 24 or data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def image_data(data: bytes) -> bytes | None:
    """The concatenated IDAT chunks of a PNG, or ``None`` when its chunk structure does not
    hold together (a chunk running past the end, or no IEND chunk)."""
    chunks = []
    position = len(PNG_SIGNATURE)
    while position + 12 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        end = position + 12 + length
        if end > len(data):
            return None
        if kind == b"IDAT":
            chunks.append(data[position + 8 : end - 4])
        elif kind == b"IEND":
            return b"".join(chunks)
        position = end
    return None


def is_safe_reference(data: bytes, width: int, height: int) -> bool:
    """Whether ``data`` is an 8-bit RGB non-interlaced PNG of ``width`` x ``height`` whose
    image data inflates to exactly the size such an image has (and no further)."""
    if png_size(data) != (width, height) or len(data) < 29:
        return False
    if tuple(data[24:29]) != _RGB8:
        return False
    compressed = image_data(data)
    if compressed is None:
        return False
    expected = height * (1 + 3 * width)
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(compressed, expected + 1)
    except zlib.error:
        return False
    return len(raw) == expected and not inflater.unconsumed_tail
