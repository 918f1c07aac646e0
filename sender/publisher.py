"""``FramePublisher``: a ZeroMQ PUB socket that sends coded frames (and, to subscribers who
ask, lossless reference frames for PSNR measurement)."""

from __future__ import annotations

import functools
import operator
import time
from dataclasses import dataclass

import cv2
import msgpack
import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message

from shared import wire
from shared.codec import ImageCodec
from shared.frames import to_rgb
from shared.roi import FaceRoi
from shared.security import ServerSecurity
from shared.video import VideoEncoder, VideoSettings


def _reference_png_options() -> list[int]:
    """Fast lossless PNG settings for the references: zlib level 1 with run-length matching
    and every row filtered "up" (from the row above). On a 640x480 webcam frame: 5.4 ms
    and 191 kB against 12.6 ms and 210 kB with OpenCV's default filter choice, and 3.4
    instead of 5.1 ms to decode. On a slower AVX2-only VM with OpenCV 5.1 (2026-12-02):
    11.2 ms per webcam frame (level 1 alone 23.6 ms) and 16.7 ms per frame of the sample
    clip, a third of the sender's time there. An OpenCV without the filter option gets
    level 1 only."""
    options = [cv2.IMWRITE_PNG_COMPRESSION, 1]
    if hasattr(cv2, "IMWRITE_PNG_FILTER") and hasattr(cv2, "IMWRITE_PNG_FILTER_UP"):
        options += [cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
        options += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
    return options


REFERENCE_PNG_OPTIONS = _reference_png_options()

_HANDSHAKE_TEXT = {
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: (
        "key_not_allowed",
        "a receiver's key is not in --allow: refused (copy its public key there)",
    ),
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: (
        "security_mismatch",
        "a receiver's handshake failed: --secure on one end only, or the wrong --server-key",
    ),
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: ("failed", "a receiver's handshake failed"),
}
_HANDSHAKE_FAILURES = functools.reduce(operator.or_, _HANDSHAKE_TEXT)

SEND_HIGH_WATER_MARK = 16  # messages queued per subscriber before ZeroMQ drops new ones


@dataclass(frozen=True)
class SentFrame:
    """What one ``send`` put on the wire: sequence number, coded bytes, timings in ms."""

    seq: int
    payload_bytes: int
    message_bytes: int
    width: int
    height: int
    encode_ms: float
    kind: str = "key"
    dropped_slices: int = 0  # slices sent with a broken CRC (``drop_slices``)
    reference_bytes: int = 0  # the lossless original's PNG, when one was sent


def break_slice_crcs(body: bytes, slices: list[int]) -> bytes:
    """A frame message body whose CRC-32 of each slice in ``slices`` is wrong, so receivers
    see those slices as damaged (simulated loss)."""
    fields = msgpack.unpackb(body, raw=False)
    for index in slices:
        fields["crcs"][index] ^= 0xFFFFFFFF
    return msgpack.packb(fields, use_bin_type=True)


class FramePublisher:
    """Encodes frames with ``codec`` and publishes them on ``bind`` (e.g. ``tcp://*:5555``)."""

    def __init__(
        self,
        codec: ImageCodec,
        bind: str,
        stream_id: str,
        send_reference: bool = True,
        context: zmq.Context | None = None,
        security: ServerSecurity | None = None,
        video: VideoSettings | None = None,
        roi: FaceRoi | None = None,
        drop_slices: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self.codec = codec
        self.roi = roi  # region of interest: faces get the bits (shared.roi); None = off
        self.encoder = VideoEncoder(codec, video)
        self.stream_id = stream_id
        self.send_reference = send_reference
        if not 0.0 <= drop_slices <= 1.0:
            raise ValueError("drop-slices must be a probability in 0..1")
        self.drop_slices = drop_slices  # simulated loss: each slice's CRC broken with this p
        self.rng = np.random.default_rng(seed)
        self.seq = -1
        self.context = context or zmq.Context.instance()
        # XPUB rather than PUB: it also tells which topics subscribers want, so the lossless
        # originals are only encoded while some receiver subscribes to them.
        self.socket = self.context.socket(zmq.XPUB)
        self.subscribed_topics: set[bytes] = set()  # topic prefixes someone subscribes to
        self.socket.setsockopt(zmq.SNDHWM, SEND_HIGH_WATER_MARK)
        self.socket.setsockopt(zmq.LINGER, 2000)
        self.security = security
        if security is not None:
            security.apply(self.socket)
        # Made before binding: receivers whose handshake fails (``refused_handshakes``).
        self.monitor = self.socket.get_monitor_socket(_HANDSHAKE_FAILURES)
        self.refused: dict[str, int] = {}  # failed receiver handshakes, by kind
        try:
            self.socket.bind(bind)
        except zmq.ZMQError as error:
            self.socket.close(linger=0)
            if security is not None:
                security.close()
            raise ValueError(f"cannot bind {bind}: {error.strerror}") from None

    def _references_wanted(self) -> bool:
        """Whether a subscriber wants the lossless originals (a subscribed prefix of their
        topic, e.g. ``b""`` for everything), from the messages XPUB passes up: ``0x01 +
        prefix`` for the first subscriber of a prefix, ``0x00 + prefix`` when its last one
        leaves."""
        while True:
            try:
                message = self.socket.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            if message[:1] == b"\x01":
                self.subscribed_topics.add(message[1:])
            elif message[:1] == b"\x00":
                self.subscribed_topics.discard(message[1:])
        return any(wire.TOPIC_REFERENCE.startswith(t) for t in self.subscribed_topics)

    def send(
        self, frame: np.ndarray, level: int, color_order: str = "bgr", late_s: float = 0.0
    ) -> SentFrame:
        """Encode and publish one frame (a key frame when the settings' interval or a request
        says so, a predicted frame otherwise); never blocks on slow subscribers. ``late_s``:
        how long ago the frame was due (its capture time, from which latency counts)."""
        capture_us = time.time_ns() // 1000 - round(late_s * 1e6)
        started = time.perf_counter()
        height, width = frame.shape[:2]
        if height * width > wire.MAX_FRAME_PIXELS:
            raise ValueError(
                f"frames of {width}x{height} are larger than receivers decode (1920x1088 "
                "pixels): give --size, e.g. --size 1280x720"
            )
        rgb = to_rgb(frame, color_order)
        quality = self.roi.map_for(rgb) if self.roi is not None else None
        coded = self.encoder.encode(rgb, level, "rgb", quality=quality)
        encode_ms = (time.perf_counter() - started) * 1000
        self.seq += 1
        parts = wire.encode_frame(
            wire.FrameMessage.of(self.stream_id, self.seq, capture_us, self.codec.model_hash, coded)
        )
        dropped = []
        if self.drop_slices > 0:
            count = len(coded.slice_bytes) or 1
            dropped = [int(i) for i in np.flatnonzero(self.rng.random(count) < self.drop_slices)]
            if dropped:
                parts[1] = break_slice_crcs(parts[1], dropped)
        self.socket.send_multipart(parts, flags=zmq.NOBLOCK)
        reference_bytes = 0
        # Read the subscriptions even when no originals are ever sent: XPUB queues them.
        wanted = self._references_wanted()
        if self.send_reference and wanted:
            bgr = np.ascontiguousarray(rgb[:, :, ::-1])
            ok, png = cv2.imencode(".png", bgr, REFERENCE_PNG_OPTIONS)
            if ok:
                reference = wire.ReferenceMessage(
                    self.stream_id, self.seq, coded.width, coded.height, png.tobytes()
                )
                reference_bytes = len(png)
                self.socket.send_multipart(wire.encode_reference(reference), flags=zmq.NOBLOCK)
        return SentFrame(
            self.seq,
            len(coded.payload),
            len(parts[1]),
            coded.width,
            coded.height,
            encode_ms,
            coded.kind,
            len(dropped),
            reference_bytes,
        )

    def use_codec(self, codec: ImageCodec) -> None:
        """Code the frames from the next on with ``codec`` (a key frame first); receivers
        follow a zoo model by the hash the frames carry. Nothing changes for the same codec."""
        if codec is self.codec:
            return
        self.codec = codec
        self.encoder = VideoEncoder(codec, self.encoder.settings)

    def next_is_key(self) -> bool:
        """Whether the next frame will be a key frame (for rate control)."""
        return self.encoder.next_is_key()

    def request_key_frame(self) -> None:
        """Make the next frame a key frame."""
        self.encoder.request_key_frame()

    def refused_handshakes(self) -> list[str]:
        """Receivers refused since the last call, as lines for the user: one per kind the
        first time it happens (``refused`` counts them all)."""
        lines = []
        while self.monitor.poll(0):
            event = recv_monitor_message(self.monitor)["event"]
            kind, text = _HANDSHAKE_TEXT[event]
            if kind not in self.refused:
                lines.append(text)
            self.refused[kind] = self.refused.get(kind, 0) + 1
        return lines

    def close(self) -> None:
        """Announce the end of the stream and close the socket (lingers up to 2 s)."""
        end = wire.EndMessage(self.stream_id, self.seq, self.seq + 1)
        try:
            self.socket.send_multipart(wire.encode_end(end), flags=zmq.NOBLOCK)
        except zmq.Again:
            pass
        self.socket.disable_monitor()
        self.monitor.close(linger=0)
        self.socket.close()
        if self.roi is not None:
            self.roi.close()
        if self.security is not None:
            self.security.close()
