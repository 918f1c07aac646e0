"""The wire format: ZeroMQ multipart messages ``[topic, msgpack body]``.

Topics (PUB/SUB prefix filtering happens at the publisher, so a receiver that does not
subscribe to a topic costs no bandwidth for it):

- ``b"lc.frame"``: a coded frame. Body map:
  ``v`` protocol version (int), ``t`` = "frame", ``stream`` stream id (str, <= 64 chars),
  ``seq`` sequence number (int, 0 .. 2**63-1, +1 per frame), ``ts_us`` capture time (int,
  microseconds since the Unix epoch, sender clock), ``w``/``h`` frame size in pixels
  (1 .. 4096), ``model`` model content hash (16 hex chars), ``level`` quality level (int),
  ``kind`` "key" (decodable alone) or "inter" (predicted from frame ``seq - 1``; see
  ``shared.video``), ``rows`` latent rows per slice (0 = one slice), ``payload`` the
  entropy-coded slices one after another (bin), ``slices`` the byte length of each slice
  (array of 1..64 ints, each a multiple of 4, summing to the payload's length), ``crcs`` one
  CRC-32 per slice (array, same length) over the frame's header and then the slice:
  ``zlib.crc32(slice, zlib.crc32(header))`` with ``header`` the msgpack array ``[v, t,
  stream, seq, ts_us, w, h, model, level, kind, rows, slices]`` (``frame_header``), so a
  damaged header field fails every slice. A slice whose CRC does not match is reported in
  ``FrameMessage.damaged`` (the receiver conceals its band); a frame with every slice
  damaged is rejected.
- ``b"lc.ref"``: the sender's original frame, losslessly PNG-coded, for measuring the true
  PSNR at the receiver. Body: ``v``, ``t`` = "reference", ``stream``, ``seq``, ``w``, ``h``,
  ``png`` (bin). Not part of the coded stream's bitrate.
- ``b"lc.end"``: the stream ended. Body: ``v``, ``t`` = "end", ``stream``, ``seq`` (the last
  frame's sequence number, -1 when none), ``frames`` (int).

Feedback (receiver -> sender, a DEALER socket to the sender's ROUTER, one part): a msgpack
map ``v``, ``t`` = "report", ``stream``, ``frames`` (decoded in the last interval),
``kbps``, ``lost`` (sequence gaps), ``latency_ms`` (p50, -1 when unknown), ``decode_ms``
(median, -1 when unknown), ``keyframe`` (bool: the receiver asks for a key frame, e.g. on
joining). Numbers are non-negative and bounded; ``decode_report`` checks them all.

``decode`` validates every field before anything else touches it and raises ``WireError``
with a short machine-readable ``reason`` for each kind of rejection.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import zlib
from dataclasses import dataclass

import msgpack

PROTOCOL_VERSION = 5  # 2: key/inter frames, slices; 3: hyperprior tables per prior tile;
# 4: hyperprior latents of table row 0 are implied zeros (not coded); 5: the slice CRCs
# cover the frame's header too (the payload bytes are protocol 4's)
TOPIC_FRAME = b"lc.frame"
TOPIC_REFERENCE = b"lc.ref"
TOPIC_END = b"lc.end"
TOPICS = (TOPIC_FRAME, TOPIC_REFERENCE, TOPIC_END)

# Above any message a receiver accepts (at most 1920x1088 pixels): a reference PNG of noise
# is 6.3 MB, a key frame of the `dense` model whose every latent is an escape 6.6 MB. A
# receiver queues up to 64 messages, so this bounds what a flood of large ones makes it
# hold (1 GiB; it was 2 GiB at 32 MiB).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_SIDE = 4096
MAX_FRAME_PIXELS = 1920 * 1088  # receivers refuse larger frames before any decoding work
MAX_STREAM_ID = 64
MAX_SLICES = 64
FRAME_KINDS = ("key", "inter")
_HASH_RE = re.compile(r"[0-9a-f]{16}")


class WireError(ValueError):
    """A message that must be rejected; ``reason`` names the check that failed."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class FrameMessage:
    stream: str
    seq: int
    ts_us: int
    width: int
    height: int
    model: str
    level: int
    payload: bytes
    kind: str = "key"
    slice_rows: int = 0
    slice_bytes: tuple[int, ...] = ()  # empty: one slice of the whole payload
    damaged: frozenset[int] = frozenset()  # slices whose CRC-32 failed (set by ``decode``)

    @classmethod
    def of(cls, stream: str, seq: int, ts_us: int, model: str, coded) -> FrameMessage:
        """The message carrying ``coded`` (a ``shared.codec.CompressedFrame``: size, level,
        kind, payload and slicing are taken from it)."""
        return cls(
            stream,
            seq,
            ts_us,
            coded.width,
            coded.height,
            model,
            coded.level,
            coded.payload,
            coded.kind,
            coded.slice_rows,
            coded.slice_bytes,
        )

    def slices(self) -> list[bytes]:
        """The payload cut into its slices."""
        return cut_payload(self.payload, self.slice_bytes)


def cut_payload(payload: bytes, sizes: tuple[int, ...]) -> list[bytes]:
    """``payload`` cut into consecutive pieces of ``sizes`` bytes (no sizes: the whole
    payload as one piece). Raises ``ValueError`` when the sizes do not add up to its
    length."""
    sizes = sizes or (len(payload),)
    if sum(sizes) != len(payload):
        raise ValueError("slice lengths do not add up to the payload")
    ends = itertools.accumulate(sizes)
    return [payload[end - size : end] for size, end in zip(sizes, ends, strict=True)]


@dataclass(frozen=True)
class ReferenceMessage:
    stream: str
    seq: int
    width: int
    height: int
    png: bytes


@dataclass(frozen=True)
class EndMessage:
    stream: str
    last_seq: int
    frames: int


Message = FrameMessage | ReferenceMessage | EndMessage

MAX_REPORT_BYTES = 1024
MAX_REPORT_LOST = 2**31  # a report's "lost" count: senders refuse larger
MAX_REPORT_NUMBER = 1e7  # kbps, latency_ms, decode_ms: senders refuse larger


@dataclass(frozen=True)
class ReportMessage:
    """A receiver's report over the feedback channel (see the module docstring)."""

    stream: str
    frames: int
    kbps: float
    lost: int
    latency_ms: float
    decode_ms: float
    keyframe: bool


def encode_report(message: ReportMessage) -> bytes:
    body = {
        "v": PROTOCOL_VERSION,
        "t": "report",
        "stream": message.stream,
        "frames": message.frames,
        "kbps": float(message.kbps),
        "lost": message.lost,
        "latency_ms": float(message.latency_ms),
        "decode_ms": float(message.decode_ms),
        "keyframe": bool(message.keyframe),
    }
    return msgpack.packb(body, use_bin_type=True)


def _number(body: dict, key: str, high: float) -> float:
    value = body.get(key)
    if type(value) not in (int, float) or not -1.0 <= value <= high or value != value:
        raise WireError("bad_field", f"{key} must be a number in -1..{high}")
    return float(value)


def _unpack_body(
    raw: bytes, max_bytes: int, max_bin: int, max_str: int, max_array: int, max_map: int
) -> dict:
    """The msgpack map of one message, unpacked with hard limits on every length (no ext
    types), of this protocol version; raises ``WireError``."""
    if len(raw) > max_bytes:
        raise WireError("too_large", f"{len(raw)} bytes")
    try:
        body = msgpack.unpackb(
            raw,
            raw=False,
            strict_map_key=True,
            max_bin_len=max_bin,
            max_str_len=max_str,
            max_array_len=max_array,
            max_map_len=max_map,
            max_ext_len=0,
        )
    except Exception as error:  # msgpack raises several unrelated types on bad input
        raise WireError("bad_msgpack", type(error).__name__) from None
    if not isinstance(body, dict):
        raise WireError("bad_msgpack", "body is not a map")
    version = body.get("v")
    if version != PROTOCOL_VERSION or type(version) is not int:
        raise WireError(
            "protocol_version",
            f"message has protocol version {version!r}, this end speaks {PROTOCOL_VERSION}",
        )
    return body


def decode_report(raw: bytes) -> ReportMessage:
    """Validate one feedback message; raises ``WireError``."""
    body = _unpack_body(raw, MAX_REPORT_BYTES, max_bin=0, max_str=256, max_array=0, max_map=16)
    if body.get("t") != "report":
        raise WireError("bad_field", "not a report")
    keyframe = body.get("keyframe")
    if type(keyframe) is not bool:
        raise WireError("bad_field", "keyframe must be a boolean")
    return ReportMessage(
        stream=_stream(body),
        frames=_int(body, "frames", 0, 10**6),
        kbps=_number(body, "kbps", MAX_REPORT_NUMBER),
        lost=_int(body, "lost", 0, MAX_REPORT_LOST),
        latency_ms=_number(body, "latency_ms", MAX_REPORT_NUMBER),
        decode_ms=_number(body, "decode_ms", MAX_REPORT_NUMBER),
        keyframe=keyframe,
    )


def frame_header(message: FrameMessage) -> bytes:
    """The bytes every slice CRC of ``message`` starts from: its header fields (all but
    ``payload`` and ``crcs``) as one msgpack array, in the module docstring's order."""
    fields = [
        PROTOCOL_VERSION,
        "frame",
        message.stream,
        message.seq,
        message.ts_us,
        message.width,
        message.height,
        message.model,
        message.level,
        message.kind,
        message.slice_rows,
        [len(piece) for piece in message.slices()],
    ]
    return msgpack.packb(fields, use_bin_type=True)


def frame_crcs(message: FrameMessage) -> list[int]:
    """The CRC-32 of each slice of ``message``, each continued from its header's CRC."""
    header_crc = zlib.crc32(frame_header(message))
    return [zlib.crc32(piece, header_crc) & 0xFFFFFFFF for piece in message.slices()]


def encode_frame(message: FrameMessage) -> list[bytes]:
    body = {
        "v": PROTOCOL_VERSION,
        "t": "frame",
        "stream": message.stream,
        "seq": message.seq,
        "ts_us": message.ts_us,
        "w": message.width,
        "h": message.height,
        "model": message.model,
        "level": message.level,
        "kind": message.kind,
        "rows": message.slice_rows,
        "payload": message.payload,
        "slices": [len(piece) for piece in message.slices()],
        "crcs": frame_crcs(message),
    }
    return [TOPIC_FRAME, msgpack.packb(body, use_bin_type=True)]


def encode_reference(message: ReferenceMessage) -> list[bytes]:
    body = {
        "v": PROTOCOL_VERSION,
        "t": "reference",
        "stream": message.stream,
        "seq": message.seq,
        "w": message.width,
        "h": message.height,
        "png": message.png,
    }
    return [TOPIC_REFERENCE, msgpack.packb(body, use_bin_type=True)]


def encode_end(message: EndMessage) -> list[bytes]:
    body = {
        "v": PROTOCOL_VERSION,
        "t": "end",
        "stream": message.stream,
        "seq": message.last_seq,
        "frames": message.frames,
    }
    return [TOPIC_END, msgpack.packb(body, use_bin_type=True)]


def _int(body: dict, key: str, low: int, high: int) -> int:
    value = body.get(key)
    if type(value) is not int:  # bool is an int subclass; refuse it too
        raise WireError("bad_field", f"{key} must be an integer")
    if not low <= value <= high:
        raise WireError("out_of_range", f"{key}={value} outside {low}..{high}")
    return value


def _bytes(body: dict, key: str) -> bytes:
    value = body.get(key)
    if not isinstance(value, bytes):
        raise WireError("bad_field", f"{key} must be binary")
    return value


def _stream(body: dict) -> str:
    value = body.get("stream")
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= MAX_STREAM_ID
        or not value.isprintable()
    ):
        raise WireError("bad_field", "stream must be a printable string of 1..64 characters")
    return value


def decode(frames: list[bytes]) -> Message:
    """Validate and parse one multipart message from the network."""
    if len(frames) != 2:
        raise WireError("bad_framing", f"expected 2 message parts, got {len(frames)}")
    topic, raw = frames
    if topic not in TOPICS:
        raise WireError("bad_topic", f"unknown topic {topic[:32]!r}")
    body = _unpack_body(
        raw, MAX_MESSAGE_BYTES, max_bin=MAX_MESSAGE_BYTES, max_str=1024, max_array=64, max_map=64
    )
    kind = {TOPIC_FRAME: "frame", TOPIC_REFERENCE: "reference", TOPIC_END: "end"}[topic]
    if body.get("t") != kind:
        raise WireError("bad_field", f"type {body.get('t')!r} does not match topic {kind}")
    stream = _stream(body)
    if kind == "end":
        return EndMessage(
            stream, _int(body, "seq", -1, 2**63 - 1), _int(body, "frames", 0, 2**63 - 1)
        )
    seq = _int(body, "seq", 0, 2**63 - 1)
    width = _int(body, "w", 1, MAX_SIDE)
    height = _int(body, "h", 1, MAX_SIDE)
    if kind == "reference":
        return ReferenceMessage(stream, seq, width, height, _bytes(body, "png"))
    ts_us = _int(body, "ts_us", 0, 2**63 - 1)
    model = body.get("model")
    if not isinstance(model, str) or not _HASH_RE.fullmatch(model):
        raise WireError("bad_field", "model must be 16 lowercase hex characters")
    level = _int(body, "level", 0, 255)
    kind = body.get("kind")
    if kind not in FRAME_KINDS:
        raise WireError("bad_field", f"kind must be one of {FRAME_KINDS}")
    rows = _int(body, "rows", 0, MAX_SIDE)
    payload = _bytes(body, "payload")
    if len(payload) > 16 * width * height + 4096:
        raise WireError(
            "bad_payload", f"payload of {len(payload)} bytes is too large for the frame"
        )
    sizes = _int_list(body, "slices", MAX_MESSAGE_BYTES)
    crcs = _int_list(body, "crcs", 0xFFFFFFFF)
    if len(crcs) != len(sizes):
        raise WireError("bad_field", "slices and crcs differ in length")
    if sum(sizes) != len(payload) or any(size % 4 for size in sizes):
        raise WireError("bad_payload", "slice lengths must be multiples of 4 summing to payload")
    canonical = tuple(sizes) if len(sizes) > 1 else ()  # one slice: no table needed
    message = FrameMessage(
        stream, seq, ts_us, width, height, model, level, payload, kind, rows, canonical
    )
    expected = frame_crcs(message)
    damaged = frozenset(i for i, crc in enumerate(crcs) if crc != expected[i])
    if len(damaged) == len(sizes):
        raise WireError("checksum", "no slice's CRC-32 matches")
    if damaged:
        message = dataclasses.replace(message, damaged=damaged)
    return message


def _int_list(body: dict, key: str, high: int) -> list[int]:
    """A list of 1..MAX_SLICES integers in ``0..high``."""
    values = body.get(key)
    if not isinstance(values, list) or not 1 <= len(values) <= MAX_SLICES:
        raise WireError("bad_field", f"{key} must be a list of 1..{MAX_SLICES} integers")
    if any(type(v) is not int or not 0 <= v <= high for v in values):
        raise WireError("bad_field", f"{key} must hold integers in 0..{high}")
    return values
