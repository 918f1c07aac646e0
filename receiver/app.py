"""The receiver's main loop: validate, decode, match references for PSNR, report."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from shared import wire
from shared.cli import check_output_file, prepare_output_folder, stop_on_signals
from shared.codec import CompressedFrame, ImageCodec, configure_threads, default_model
from shared.dashboard import Dashboard
from shared.entropy.coder import CorruptPayload
from shared.feedback import FeedbackClient, feedback_address
from shared.memory import keep_freed_memory
from shared.metrics import psnr
from shared.modelfile import ModelFileError
from shared.registry import (
    DEFAULT_MODEL,
    REALTIME_DENOISE_MODEL,
    faster_model,
    zoo_name_for_hash,
)
from shared.security import ClientSecurity
from shared.streak import Streak
from shared.video import MissingReference, VideoDecoder

from .conceal import Concealer
from .connection import WATCHED_EVENTS, ConnectionWatch
from .display import FrameSink, StripSampler, code_view, plot_run, write_strip
from .reference import is_safe_reference
from .stats import FrameRecord, StreamStats, format_line
from .subscriber import FrameSubscriber

# Frames and references kept while waiting for their partner (a reference follows its
# frame at once): a few are enough, and each may be a 1920x1088 picture (6 MB).
PENDING_LIMIT = 16
KEYFRAME_REQUEST_INTERVAL_S = 0.3  # at most one key-frame request per this many seconds
LATENT_HISTORY = 8  # decoded latents kept for the strip (references follow their frames)


@dataclass
class ReceiverConfig:
    connect: str = "tcp://127.0.0.1:5555"
    model: str | None = None  # zoo name or model file; None = default_model(device, precision)
    device: str = "auto"
    threads: int = 0  # torch threads; 0 = half the cores (see configure_threads)
    precision: str = "auto"  # transforms' dtype: auto, fp32 or bf16
    psnr: bool = True
    frames: int | None = None
    duration: float | None = None
    idle_timeout: float | None = None  # give up after this many seconds without a message
    keep_running: bool = False  # ignore end-of-stream messages
    decode_all: bool = False  # decode every frame even when falling behind
    out: str | None = None  # folder for summary.json, frames.jsonl and side_by_side.png
    feedback: str = "auto"  # reports to the sender: "auto" (data port + 1), "off", or address
    dashboard: bool = False  # a live terminal table instead of one line per second
    show: bool = False  # a window with the video and a statistics overlay
    record: str | None = None  # write the received video to this file (mp4)
    show_code: bool = False  # --show/--record: reconstruction | code map | original
    secure: bool = False  # CURVE: encrypt and authenticate (shared.security)
    key: str = "keys/receiver.key_secret"
    server_key: str = "keys/sender.key"
    quiet: bool = False
    conceal: str = "inpaint"  # damaged slices: inpaint (copy without the model), motion, copy, gray
    # Zoo name or file of the inpainting network; None: the bundled one, or copy-previous
    # with a warning where it is missing (a network the user names must load).
    inpaint_model: str | None = None
    drop_slices: float = 0.0  # treat each slice as lost with this probability (tests, demos)


class Receiver:
    """Decodes messages from a ``FrameSubscriber`` and keeps ``StreamStats``."""

    def __init__(
        self, codec: ImageCodec, stats: StreamStats, log=print, request_key_frame=None
    ) -> None:
        self.codec = codec
        self.decoder = VideoDecoder(codec)
        self.stats = stats
        self.request_key_frame = request_key_frame  # callable() -> None, or None
        self._last_request_s = -1e9
        # Arrival (monotonic s) of the first frame message and of the first shown picture:
        # a late joiner waits for a key frame in between.
        self.first_frame_s: float | None = None
        self.first_picture_s: float | None = None
        self.log = log
        self.recent: OrderedDict[int, tuple[FrameRecord, np.ndarray]] = OrderedDict()
        self.references: OrderedDict[int, np.ndarray] = OrderedDict()
        self.last_pair: tuple[np.ndarray, np.ndarray] | None = None
        self.warned: set[str] = set()
        self.ended = False
        self.sink: FrameSink | None = None
        self.overlay_lines: list[str] = ["waiting for statistics"]
        self.last_shown: np.ndarray | None = None
        self.last_view: np.ndarray | None = None  # what the sink got last (concealment)
        self.show_code = False  # the sink gets reconstruction | code map (| original)
        self.originals_expected = False  # subscribed to the sender's lossless originals
        # With show_code and originals: a frame waits here for its original, which the
        # sender publishes right after it, to be shown as reconstruction | code | original.
        self.waiting_view: tuple[int, np.ndarray, np.ndarray, int] | None = None  # +stride
        self.strip: StripSampler | None = None  # samples for strip.png (with --out)
        self.latents: OrderedDict[int, np.ndarray] = OrderedDict()
        self.concealer = Concealer("copy")  # run_receiver sets the configured one
        self.drop_slices = 0.0  # simulated loss: probability that a slice counts as missing
        self.drop_rng = np.random.default_rng()
        self.codecs: dict[str, ImageCodec] = {codec.model_hash: codec}  # loaded, by hash
        self.reference_bytes = 0  # of the lossless originals received (not in the rates)

    def _conceal(self) -> None:
        """A frame that arrived damaged is dropped; the viewer and the recording get the
        last good picture again instead of garbage (copy-previous concealment)."""
        if self.sink is not None and self.last_view is not None:
            self.sink.add(self.last_view, self.overlay_lines)
            self.stats.concealed += 1

    def _ask_for_key_frame(self) -> None:
        now = time.monotonic()
        if self.request_key_frame is not None and now - self._last_request_s >= (
            KEYFRAME_REQUEST_INTERVAL_S
        ):
            self._last_request_s = now
            self.request_key_frame()

    def _conceal_bands(self, rgb: np.ndarray, damaged: list[int], rows: int) -> np.ndarray:
        """Conceal the pixel bands of damaged slices (the decoded latents there are a
        prediction, or zeros right after a key frame was lost): ``receiver.conceal``."""
        return self.concealer(rgb, self.last_shown, damaged, rows, self.codec.stride)

    def _missing(self, message: wire.FrameMessage) -> frozenset[int]:
        """Slices to treat as lost: CRC failures, plus simulated drops (``drop_slices``)."""
        if self.drop_slices <= 0:
            return message.damaged
        count = len(message.slice_bytes) or 1
        dropped = np.flatnonzero(self.drop_rng.random(count) < self.drop_slices)
        return message.damaged | frozenset(int(i) for i in dropped)

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            self.log(f"receiver: warning: {text}")

    def handle(self, parts: list[bytes], size: int, arrival_s: float, decode: bool = True) -> None:
        """Validate and act on one message; ``decode=False`` decodes a frame's latents (the
        next predicted frame needs them) but skips synthesizing and showing it."""
        try:
            message = wire.decode(parts)
        except wire.WireError as error:
            self.stats.reject(error.reason)
            if error.reason in ("checksum", "bad_payload") and parts[0] == wire.TOPIC_FRAME:
                self._conceal()
            if error.reason == "protocol_version":
                self._warn_once("version", str(error).split(": ", 1)[1])
            return
        if isinstance(message, wire.EndMessage):
            self.ended = True
        elif isinstance(message, wire.ReferenceMessage):
            self.reference_bytes += size
            self._on_reference(message)
        else:
            self._on_frame(message, size, arrival_s, show=decode)

    def _codec_for(self, model_hash: str) -> ImageCodec | None:
        """The codec of the model ``model_hash`` names: this receiver's own or a zoo model's
        pinned hash (e.g. a sender's ``--denoise``), loaded once on the same device and
        precision; ``None`` for any other hash."""
        if model_hash not in self.codecs:
            name = zoo_name_for_hash(model_hash)
            if name is None:
                return None
            own = self.codec
            try:
                self.codecs[model_hash] = ImageCodec.load(name, str(own.device), own.precision)
            except ModelFileError as error:
                self._warn_once("zoo:" + name, f"cannot load zoo model {name!r}: {error}")
                return None
        return self.codecs[model_hash]

    def _on_frame(
        self, message: wire.FrameMessage, size: int, arrival_s: float, show: bool = True
    ) -> None:
        codec = self._codec_for(message.model)
        if codec is None:
            self.stats.reject("model_mismatch")
            self._warn_once(
                "model:" + message.model,
                f"stream {message.stream!r} is coded with model {message.model}, this receiver "
                f"loaded {self.codec.model_hash}; start it with the sender's --model",
            )
            return
        if message.level >= codec.levels:
            self.stats.reject("bad_level")
            return
        if message.width * message.height > wire.MAX_FRAME_PIXELS:
            self.stats.reject("frame_too_large")
            self._warn_once("size", f"frames above {wire.MAX_FRAME_PIXELS} pixels are refused")
            return
        decoder = self.decoder
        if codec is not self.codec:
            # Another model's stream starts at its key frame; until one decodes, the current
            # model and its reference stay (a stray message must not reset them).
            if message.kind != "key":
                self.stats.unreferenced_frame(message.seq)
                self._ask_for_key_frame()
                return
            decoder = VideoDecoder(codec)
        if self.first_frame_s is None:
            self.first_frame_s = arrival_s
        started = time.perf_counter()
        coded = CompressedFrame(
            message.payload,
            message.height,
            message.width,
            message.level,
            message.kind,
            message.slice_rows,
            message.slice_bytes,
        )
        try:
            decoded = decoder.decode(
                coded, message.seq, missing=self._missing(message), synthesize=show
            )
        except MissingReference:
            # Joined mid-stream or missed a frame: nothing to predict from until a key frame.
            self.stats.unreferenced_frame(message.seq)
            self._ask_for_key_frame()
            return
        except CorruptPayload:
            self.stats.reject("corrupt_payload")
            self._conceal()
            self._ask_for_key_frame()
            return
        if decoder is not self.decoder:
            self.codec, self.decoder = codec, decoder
            name = zoo_name_for_hash(codec.model_hash) or codec.model_hash
            self.log(f"receiver: the stream is now coded with model {name!r}; switched to it")
        if decoded.damaged or not self.decoder.synchronized:
            self._ask_for_key_frame()
        if decoded.rgb is None:
            self.stats.skip(message.seq)
            return
        rgb = decoded.rgb
        if decoded.damaged:
            rgb = self._conceal_bands(rgb, decoded.damaged, message.slice_rows)
        decode_ms = (time.perf_counter() - started) * 1000
        latency_ms = (time.time_ns() // 1000 - message.ts_us) / 1000
        latents = decoded.latents
        record = FrameRecord(
            seq=message.seq,
            arrival_s=arrival_s,
            message_bytes=size,
            payload_bytes=len(message.payload),
            pixels=message.width * message.height,
            latency_ms=latency_ms,
            decode_ms=decode_ms,
            zero_share=float(np.count_nonzero(latents == 0)) / latents.size,
            kind=message.kind,
            damaged_slices=len(decoded.damaged),
        )
        self.stats.add(record)
        if self.first_picture_s is None:
            self.first_picture_s = arrival_s
        if self.sink is not None:
            if self.show_code and self.originals_expected:
                self.show_waiting_view()  # its original did not come before this frame
                self.waiting_view = (message.seq, latents, rgb, self.codec.stride)
            else:
                self._show(code_view(latents, rgb, self.codec.stride) if self.show_code else rgb)
        self.last_shown = rgb
        if self.strip is not None:
            self.latents[message.seq] = latents.astype(np.int32)
            while len(self.latents) > LATENT_HISTORY:
                self.latents.popitem(last=False)
        self.recent[message.seq] = (record, rgb)
        while len(self.recent) > PENDING_LIMIT:
            self.recent.popitem(last=False)
        if message.seq in self.references:
            self._match(message.seq, self.references.pop(message.seq))

    def _on_reference(self, message: wire.ReferenceMessage) -> None:
        # Check the PNG before decoding, so a small message cannot make the decoder allocate
        # an image larger than the frame it claims to be, or inflate gigabytes.
        if message.width * message.height > wire.MAX_FRAME_PIXELS or not is_safe_reference(
            message.png, message.width, message.height
        ):
            self.stats.reject("bad_reference")
            return
        png = np.frombuffer(message.png, dtype=np.uint8)
        bgr = cv2.imdecode(png, cv2.IMREAD_COLOR) if png.size else None
        if bgr is None or bgr.shape[:2] != (message.height, message.width):
            self.stats.reject("bad_reference")
            return
        original = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        if message.seq in self.recent:
            self._match(message.seq, original)
        else:
            self.references[message.seq] = original
            while len(self.references) > PENDING_LIMIT:
                self.references.popitem(last=False)

    def _show(self, view: np.ndarray) -> None:
        self.sink.add(view, self.overlay_lines)
        self.last_view = view

    def show_waiting_view(self, original: np.ndarray | None = None) -> None:
        """Show the frame waiting for its original, with ``original`` or a panel saying it
        was not received; nothing when no frame waits."""
        if self.waiting_view is None or self.sink is None:
            return
        _, latents, rgb, stride = self.waiting_view
        self.waiting_view = None
        self._show(code_view(latents, rgb, stride, original, with_original=True))

    def _match(self, seq: int, original: np.ndarray) -> None:
        record, reconstruction = self.recent[seq]
        if original.shape != reconstruction.shape:
            # Consistent in itself but not with the frame of its seq (e.g. a sender that
            # restarted at another --size): no PSNR from it.
            self.stats.reject("bad_reference")
            return
        record.psnr_db = psnr(original, reconstruction)
        if self.waiting_view is not None and self.waiting_view[0] == seq:
            self.show_waiting_view(original)
        self.last_pair = (original, reconstruction)
        if self.strip is not None and seq in self.latents:
            self.strip.offer(seq, original, self.latents[seq], reconstruction)


def report_of(window: dict, lost: int) -> wire.ReportMessage:
    """A feedback report from a one-second statistics window."""

    def value(key: str) -> float:  # clocks of two machines may disagree: keep it in range
        if window[key] is None:
            return -1.0
        return min(max(float(window[key]), -1.0), wire.MAX_REPORT_NUMBER)

    return wire.ReportMessage(
        "receiver",
        window["frames"],
        value("kbps"),
        min(lost, wire.MAX_REPORT_LOST),  # in range however the sequence numbers jumped
        value("latency_ms_p50"),
        value("decode_ms_median"),
        keyframe=False,
    )


#: A stream this far behind (median latency, ms) while the lossless originals take more
#: than ``REFERENCE_SHARE`` times the video's bits: the originals are what clogs the link.
BEHIND_MS = 1000.0
REFERENCE_SHARE = 4.0


def narrow_link_hint(window: dict, reference_kbps: float) -> str | None:
    """What to tell a user whose link cannot carry the PSNR originals, or ``None``."""
    latency = window["latency_ms_p50"]
    if latency is None or latency < BEHIND_MS:
        return None
    if reference_kbps <= REFERENCE_SHARE * window["kbps"]:
        return None
    return (
        f"the stream is {latency / 1000:.1f} s behind and the lossless originals for PSNR "
        f"take {reference_kbps:.0f} kbps beside {window['kbps']:.0f} kbps of video: on a "
        "narrow link start the receiver with --no-psnr"
    )


#: A receiver busy decoding at least this share of a second while it leaves arrived frames
#: unshown, ``SLOW_SECONDS`` seconds in a row, is too slow for the stream (not the network).
BUSY_SHARE = 0.6
SLOW_SECONDS = 3


def slow_decoding_hint(model: str, decode_ms: float, shown_per_s: float) -> str:
    """What to tell a user whose receiver decodes too slowly to show every frame."""
    said = (
        f"decoding takes {decode_ms:.0f} ms a frame here, so this receiver shows "
        f"{shown_per_s:.0f} frames a second and skips the others"
    )
    faster = faster_model(model)
    if faster == REALTIME_DENOISE_MODEL:
        return said + (
            f": the sender's {model!r} model is slow to decode; its --model {faster} "
            f"decodes at the {DEFAULT_MODEL!r} model's speed"
        )
    if faster is not None:
        return said + f": the sender's --model {faster} decodes fastest"
    return said + ": this machine is busy or slow (more --threads, or a smaller sender --size)"


def overlay_lines(window: dict) -> list[str]:
    def num(value, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    return [
        f"{window['kbps']:.0f} kbps  {window['fps']:.1f} fps",
        f"PSNR {num(window['psnr_db'], '.2f')} dB",
        f"latency p50 {num(window['latency_ms_p50'], '.0f')} ms",
    ]


def write_outputs(out: Path, summary: dict, stats: StreamStats, receiver: Receiver) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    with (out / "frames.jsonl").open("w") as handle:
        for r in stats.records:
            handle.write(json.dumps(r.__dict__) + "\n")
    if receiver.last_pair is not None:
        original, reconstruction = receiver.last_pair
        side = np.concatenate([original, reconstruction], axis=1)
        cv2.imwrite(str(out / "side_by_side.png"), cv2.cvtColor(side, cv2.COLOR_RGB2BGR))
    plot_run(list(stats.records), out / "timeline.png")
    if receiver.strip is not None:
        write_strip(receiver.strip.pick(), out / "strip.png", receiver.codec.stride)


def print_to_stderr(text: str) -> None:
    """Warnings and the reasons for stopping go to stderr, flushed at once."""
    print(text, file=sys.stderr, flush=True)


class ReceiveLoop:
    """One run of the receiver: set-up, the receive loop, and the run's summary.

    Times are ``time.monotonic()`` seconds."""

    def __init__(self, config: ReceiverConfig) -> None:
        self.config = config
        if config.out:
            prepare_output_folder(config.out, "--out")
        if config.record:
            check_output_file(config.record, "--record")
        configure_threads(config.threads)
        keep_freed_memory()
        self.model = config.model or default_model(config.device, config.precision)
        self.codec = ImageCodec.load(self.model, config.device, config.precision)
        self._opened = contextlib.ExitStack()  # what run() closes, or this if set-up fails
        try:
            self._open(config)
        except BaseException:
            self._opened.close()
            raise
        self.dashboard: Dashboard | None = None  # with --dashboard, while the loop runs

        self.started = time.monotonic()
        self.window_start = self.started  # of the current one-second statistics window
        self.last_message_s = self.started
        # When the first frame was decoded (the rates count from there); the Receiver's own
        # first_frame_s is the first frame message's arrival, maybe long before (late join).
        self.first_decoded_s: float | None = None
        self.lost_reported = 0  # lost frames already told to the sender
        self.references_seen = 0  # bytes of PSNR originals counted in earlier windows
        self.hinted = False  # the narrow-link hint is given once
        self.skipped_seen = 0  # frames left unshown, counted in earlier windows
        # Seconds in a row too busy decoding to show every frame.
        self.slow_decoding = Streak(SLOW_SECONDS)
        self.idled_out = False  # stopped by --idle-timeout

    def _open(self, config: ReceiverConfig) -> None:
        """Open the sockets and the sink (each registered in ``self._opened``) and make the
        receiver."""
        security = ClientSecurity(config.key, config.server_key) if config.secure else None
        self.subscriber = FrameSubscriber(
            config.connect, with_reference=config.psnr, security=security
        )
        self._opened.callback(self.subscriber.close)
        self.feedback: FeedbackClient | None = None
        address: str | None = None  # of the sender's feedback port; None with --feedback off
        if config.feedback != "off":
            address = (
                feedback_address(config.connect) if config.feedback == "auto" else config.feedback
            )
            self.feedback = FeedbackClient(
                address, self.subscriber.context, security, WATCHED_EVENTS
            )
            self._opened.callback(self.feedback.close)
            # Joining: ask for a key frame, so the picture starts without waiting for the
            # sender's key-frame interval.
            self.feedback.send(wire.ReportMessage("join", 0, 0.0, 0, -1.0, -1.0, keyframe=True))
        self.watches = self._connection_watches(address)
        self.sink = (
            FrameSink(config.show, config.record) if (config.show or config.record) else None
        )
        if self.sink is not None:
            self._opened.callback(self.sink.close)
        self.stats = StreamStats()
        self.receiver = self._make_receiver()
        if self.sink is not None:  # runs before the sink closes: the last frame is shown
            self._opened.callback(self.receiver.show_waiting_view)

    def _connection_watches(self, feedback_at: str | None) -> list[ConnectionWatch]:
        config = self.config
        watches = [
            ConnectionWatch(self.subscriber.monitor, "stream", config.connect, config.secure)
        ]
        if self.feedback is not None:
            watches.append(
                ConnectionWatch(
                    self.feedback.monitor,
                    "feedback",
                    feedback_at,
                    config.secure,
                    "The sender cannot hear this receiver (no key frame when it asks, no rate "
                    "adaptation): open that port too, or use --feedback off",
                )
            )
        return watches

    def _make_receiver(self) -> Receiver:
        config = self.config
        receiver = Receiver(
            self.codec, self.stats, log=print_to_stderr, request_key_frame=self._request_key_frame
        )
        receiver.sink = self.sink
        receiver.show_code = config.show_code
        receiver.originals_expected = config.psnr
        receiver.strip = StripSampler() if config.out else None
        receiver.concealer = Concealer.create(
            config.conceal, config.inpaint_model, log=print_to_stderr
        )
        receiver.drop_slices = config.drop_slices
        return receiver

    def _request_key_frame(self) -> None:
        if self.feedback is not None:
            self.feedback.send(wire.ReportMessage("receiver", 0, 0.0, 0, -1.0, -1.0, keyframe=True))

    def run(self, stop: dict) -> None:
        """Print the start line, then receive until a stop condition or ``stop["stop"]`` (set
        by a signal); the sockets and the sink are closed however the loop ends."""
        config = self.config
        # What set-up opened closes last, also if the dashboard or the loop fails.
        with self._opened, contextlib.ExitStack() as display:
            print(
                f"receiver: {config.connect}, model {self.model} ({self.codec.model_hash}) on "
                f"{self.codec.device}, concealment {self.receiver.concealer.method}",
                flush=True,
            )
            if config.dashboard:
                self.dashboard = display.enter_context(
                    Dashboard(f"latentcast receiver {config.connect}")
                )
            while not stop["stop"] and not self._should_stop(time.monotonic()):
                batch = self.subscriber.receive_all(timeout_ms=100)
                now = time.monotonic()
                if batch:
                    self._take(batch, now)
                # After the batch: a sender's end message comes just before its sockets
                # close, and that disconnection is not news.
                for watch in self.watches:
                    for line in watch.poll(expected_loss=self.receiver.ended):
                        print_to_stderr(f"receiver: {line}")
                self._each_second(now)

    def _should_stop(self, now: float) -> bool:
        """Whether a limit is reached or the stream is over; says why where a user could not
        tell otherwise."""
        config = self.config
        if config.duration is not None and now - self.started >= config.duration:
            return True
        if config.frames is not None and self.stats.frames >= config.frames:
            return True
        if config.idle_timeout is not None and now - self.last_message_s > config.idle_timeout:
            print_to_stderr(f"receiver: nothing received for {config.idle_timeout:.0f} s, stopping")
            self.idled_out = True
            return True
        if self.receiver.ended and not config.keep_running:
            print_to_stderr(
                "receiver: the sender ended the stream (--keep-running waits for the next one)"
            )
            return True
        return self.sink is not None and self.sink.closed_by_user

    def _take(self, batch: list[tuple[list[bytes], int]], now: float) -> None:
        """Hand the messages that arrived together (at ``now``) to the receiver."""
        self.last_message_s = now
        # A receiver that falls behind synthesizes only the newest waiting frame, so its
        # latency stays bounded; older ones are entropy-decoded only (cheap), since the next
        # predicted frame refers to them.
        newest = max(
            (i for i, (p, _) in enumerate(batch) if p[0] == wire.TOPIC_FRAME),
            default=-1,
        )
        for i, (parts, size) in enumerate(batch):
            decode = self.config.decode_all or parts[0] != wire.TOPIC_FRAME or i == newest
            self.receiver.handle(parts, size, now, decode=decode)
        if self.first_decoded_s is None and self.stats.frames:
            self.first_decoded_s = now
            self.window_start = now

    def _each_second(self, now: float) -> None:
        """Once a second: why nothing is shown yet, or the last second's statistics."""
        if now - self.window_start < 1.0:
            return
        if self.first_decoded_s is None:
            if self.stats.unreferenced and not self.config.quiet:
                # Frames arrive but none can be shown yet: say why, once a second.
                print(
                    f"receiver: waiting for a key frame ({self.stats.unreferenced} predicted "
                    "frames so far; the sender sends one when it hears this receiver on its "
                    "feedback port, else at its next --keyframe-interval)",
                    flush=True,
                )
                self.window_start = now
            return
        window = self.stats.window(self.window_start, now)
        self.receiver.overlay_lines = overlay_lines(window)
        self._hint_if_the_originals_clog_the_link(window, now)
        self._hint_if_decoding_is_too_slow(window, now)
        if self.feedback is not None:
            self.feedback.send(report_of(window, self.stats.lost - self.lost_reported))
            self.lost_reported = self.stats.lost
        self._show(window, now)
        self.window_start = now

    def _hint_if_the_originals_clog_the_link(self, window: dict, now: float) -> None:
        """Once per run, suggest --no-psnr when the PSNR originals keep the stream behind."""
        reference_kbps = (
            8
            * (self.receiver.reference_bytes - self.references_seen)
            / (1000 * (now - self.window_start))
        )
        self.references_seen = self.receiver.reference_bytes
        hint = narrow_link_hint(window, reference_kbps)
        if hint and not self.hinted:
            self.hinted = True
            print_to_stderr(f"receiver: {hint}")

    def _hint_if_decoding_is_too_slow(self, window: dict, now: float) -> None:
        """Once per run, say so when this machine decodes too slowly to show every frame
        (frames are skipped while decoding keeps it busy): no network is at fault then."""
        skipped = self.stats.skipped - self.skipped_seen
        self.skipped_seen = self.stats.skipped
        if self.slow_decoding.done or not window["frames"]:
            return
        span = now - self.window_start
        busy = window["frames"] * window["decode_ms_median"] / 1000 / span
        if self.slow_decoding.add(bool(skipped) and busy >= BUSY_SHARE):
            model = zoo_name_for_hash(self.receiver.codec.model_hash) or "a model file"
            hint = slow_decoding_hint(model, window["decode_ms_median"], window["fps"])
            print_to_stderr(f"receiver: {hint}")

    def _show(self, window: dict, now: float) -> None:
        """The window's statistics on the dashboard, or as one status line (unless quiet)."""
        if self.dashboard is not None:
            total = self.stats.total(now - self.first_decoded_s)
            total["rejected_total"] = sum(self.stats.rejected.values())
            self.dashboard.update(window, total)
        elif not self.config.quiet:
            line = format_line(f"receiver: t={now - self.first_decoded_s:5.1f}s", window)
            print(line, flush=True)

    def summary(self, end: float) -> dict:
        """The run's totals, with rates over the time from the first decoded frame to
        ``end``."""
        stats, receiver = self.stats, self.receiver
        summary = stats.total(end - (self.first_decoded_s or end))
        summary |= {"model_hash": receiver.codec.model_hash, "connect": self.config.connect}
        summary["idle_timeout_without_frames"] = self.idled_out and stats.frames == 0
        summary |= {
            "concealment": receiver.concealer.method,
            "concealed_bands": receiver.concealer.bands,
        }
        if receiver.first_picture_s is not None:
            waited = receiver.first_picture_s - receiver.first_frame_s
            summary["time_to_first_picture_ms"] = round(1000 * waited, 1)
        return summary

    def print_summary(self, summary: dict) -> None:
        method = self.receiver.concealer.method
        print(
            format_line("receiver summary:", summary)
            + f"  lost {summary['lost_frames']}  skipped {summary['skipped_frames']}"
            + (
                f"  waited for a key frame {summary['unreferenced_frames']}"
                if summary["unreferenced_frames"]
                else ""
            )
            + f"  rejected {summary['rejected'] or 0}"
            + f"  damaged slices {summary.get('damaged_slices', 0)} ({method})",
            flush=True,
        )


def run_receiver(config: ReceiverConfig) -> dict:
    """Receive until the stream ends (unless ``keep_running``), a limit is hit, or SIGINT."""
    loop = ReceiveLoop(config)
    # From the start line until the summary and plots are written, SIGINT and SIGTERM
    # only stop the loop: a second one (the stream benchmark's stop, an impatient user)
    # must not cut the records short.
    with stop_on_signals() as stop:
        loop.run(stop)
        summary = loop.summary(time.monotonic())
        loop.print_summary(summary)
        if config.out:
            write_outputs(Path(config.out), summary, loop.stats, loop.receiver)
    return summary
