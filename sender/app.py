"""The sender's main loop: source -> encoder -> publisher, with live statistics."""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import statistics
import sys
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from shared import wire
from shared.cli import check_output_file, stop_on_signals
from shared.codec import ImageCodec, configure_threads
from shared.dashboard import Dashboard
from shared.feedback import FeedbackServer, feedback_address
from shared.memory import keep_freed_memory
from shared.metrics import bits_per_pixel
from shared.registry import DEFAULT_MODEL, DENOISE_MODEL, DENOISE_MODELS
from shared.roi import FaceRoi, RoiSettings
from shared.security import ServerSecurity
from shared.video import KEY, VideoSettings

from .publisher import FramePublisher
from .rate import RateController
from .sources import open_source


@dataclass
class SenderConfig:
    source: str = "sample"
    bind: str = "tcp://*:5555"
    model: str | None = None  # zoo name or model file; None = DEFAULT_MODEL
    denoise: bool = False  # shorthand for the DENOISE_MODEL (noisy frames coded as clean)
    quality: int | None = None  # level index; None = the model's middle level
    rate_kbps: float | None = None  # choose the level per frame to average this bitrate
    keyframe_interval: int = VideoSettings.keyframe_interval  # 1 = intra only
    slice_rows: int = VideoSettings.slice_rows  # latent rows per slice; 0 = one slice
    deadzone: float = VideoSettings.deadzone  # see shared.inter.choose_latents
    roi: str | None = None  # "face": region-of-interest coding (shared.roi); None = off
    roi_interval: int = RoiSettings.interval  # run the face detector every N frames
    roi_boost: int = 2  # with --roi and a fixed level: code this many levels higher
    feedback: str = "auto"  # receivers' reports: "auto" (data port + 1), "off", or an address
    device: str = "auto"
    threads: int = 0  # torch threads; 0 = half the cores (see configure_threads)
    precision: str = "auto"  # transforms' dtype: auto, fp32 or bf16
    fps: float | None = None  # pacing; None = the source's own rate
    frames: int | None = None
    duration: float | None = None
    loop: bool = False
    size: tuple[int, int] | None = None
    reference: bool = True
    stream_id: str = "cam0"
    secure: bool = False  # CURVE: encrypt, admit only keys in ``allow`` (shared.security)
    key: str = "keys/sender.key_secret"
    allow: str = "keys/allowed"
    warmup: float = 0.5  # seconds to let subscribers connect before the first frame
    stats_json: str | None = None
    dashboard: bool = False  # a live terminal table instead of one line per second
    quiet: bool = False
    drop_slices: float = 0.0  # simulate loss: break each slice's CRC with this probability


class KeyFrameGate:
    """Receivers' key-frame requests, answered at most once per ``min_gap_s`` seconds.

    A key frame costs several predicted frames' bits, so requests arriving faster (many
    lossy receivers, or a hostile one: without ``--secure`` anyone may send reports) must
    not turn the stream intra-only. A request within ``min_gap_s`` of the last key frame
    waits until the gap has passed; any key frame answers every request before it.
    """

    def __init__(self, min_gap_s: float = 0.5) -> None:
        self.min_gap_s = min_gap_s
        self.pending = False
        self.last_key_s = -math.inf

    def request(self) -> None:
        self.pending = True

    def due(self, now_s: float) -> bool:
        """Whether the next frame should be a key frame for the requests so far."""
        return self.pending and now_s - self.last_key_s >= self.min_gap_s

    def key_frame_sent(self, now_s: float) -> None:
        self.pending = False
        self.last_key_s = now_s


class ReceiverReports:
    """The latest statistics report of each receiver heard from in the last ``keep_s``
    seconds, at most ``limit`` receivers (the longest silent go first): what the adaptive
    rate follows and the dashboard counts. Receivers that left, or a flood of fake peers,
    then neither pile up nor slow each frame down."""

    def __init__(self, keep_s: float = 10.0, limit: int = 256) -> None:
        self.keep_s = keep_s
        self.limit = limit
        self._reports: OrderedDict[bytes, tuple[wire.ReportMessage, float]] = OrderedDict()

    def __contains__(self, peer: bytes) -> bool:
        return peer in self._reports

    def __len__(self) -> int:
        return len(self._reports)

    def add(self, peer: bytes, report: wire.ReportMessage, now_s: float) -> None:
        self._reports[peer] = (report, now_s)
        self._reports.move_to_end(peer)
        while len(self._reports) > self.limit:
            self._reports.popitem(last=False)

    def latest(self, now_s: float) -> list[wire.ReportMessage]:
        """The reports still current (older ones are forgotten here)."""
        while self._reports and now_s - next(iter(self._reports.values()))[1] > self.keep_s:
            self._reports.popitem(last=False)
        return [report for report, _ in self._reports.values()]


class KeepUpWatch:
    """Notices a sender that codes fewer frames than its source delivers because its own
    work takes too long (a slow model or a busy CPU), so it can say so once instead of
    silently streaming at a lower frame rate.

    Call ``second(handled_per_s, busy_share)`` once per second of streaming with the frames
    handled in it (sent or skipped by the rate controller) and the share of it spent working
    on frames rather than waiting for the source (a camera that delivers fewer frames than it
    announced, as many do in low light, is not the sender's fault). It returns ``True`` once,
    after ``SLOW_SECONDS`` seconds in a row below ``SHARE`` of the source's ``fps`` while busy
    at least ``BUSY_SHARE`` of the time.
    """

    SHARE = 0.85
    BUSY_SHARE = 0.8
    SLOW_SECONDS = 3

    def __init__(self, fps: float | None) -> None:
        self.fps = fps
        self.slow_seconds = 0
        self.told = False

    def second(self, handled_per_s: float, busy_share: float) -> bool:
        if self.told or not self.fps:
            return False
        slow = handled_per_s < self.SHARE * self.fps and busy_share >= self.BUSY_SHARE
        self.slow_seconds = self.slow_seconds + 1 if slow else 0
        self.told = self.slow_seconds >= self.SLOW_SECONDS
        return self.told


def keep_up_hint(model: str, handled_per_s: float, fps: float, encode_ms: float) -> str:
    """What to tell a user whose sender codes ``handled_per_s`` of ``fps`` frames a second."""
    said = (
        f"sender: coding keeps up with {handled_per_s:.0f} of the source's {fps:.0f} frames a "
        f"second (encode {encode_ms:.0f} ms a frame)"
    )
    if model == DENOISE_MODEL:
        return said + (
            f": the {DENOISE_MODEL!r} model is slow on this CPU; --model denoise-realtime "
            f"denoises at the {DEFAULT_MODEL!r} model's speed"
        )
    if model != DEFAULT_MODEL:
        return said + f": --model {DEFAULT_MODEL} is the model made for real time"
    return said + (
        ": the CPU is busy (a receiver on the same machine?) or too slow for this size; a "
        "smaller --size or --fps helps"
    )


def last_items(values: deque, count: int) -> list:
    """The last ``count`` items of ``values`` without copying the whole deque (order is
    reversed; used for medians)."""
    return list(itertools.islice(reversed(values), count))


def pace(next_due: float, fps: float | None) -> float:
    """Sleep until the slot after ``next_due`` (for a frame that rate control skipped)."""
    if not fps:
        return next_due
    next_due += 1.0 / fps
    delay = next_due - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
    return max(next_due, time.perf_counter())


def model_name(config: SenderConfig) -> str:
    """The model to load: ``--denoise`` means a denoising zoo model (``DENOISE_MODEL``
    unless ``--model`` names another of ``DENOISE_MODELS``)."""
    if not config.denoise:
        return config.model or DEFAULT_MODEL
    if config.model is None:
        return DENOISE_MODEL
    if config.model not in DENOISE_MODELS:
        raise ValueError(
            f"--denoise takes a denoising zoo model ({', '.join(DENOISE_MODELS)}), "
            f"not --model {config.model}"
        )
    return config.model


def run_sender(config: SenderConfig) -> dict:
    """Stream until the source ends, ``frames``/``duration`` is reached, or SIGINT/SIGTERM.

    Returns the summary (also written to ``stats_json`` when set).
    """
    name = model_name(config)
    if config.stats_json:
        check_output_file(config.stats_json, "--stats-json")
    configure_threads(config.threads)
    keep_freed_memory()
    codec = ImageCodec.load(name, config.device, config.precision)
    level = codec.levels // 2 if config.quality is None else config.quality
    codec.check_level(level)
    roi = None
    if config.roi is not None:  # the bits saved outside the faces buy a higher level
        roi = FaceRoi(codec.stride, RoiSettings(interval=config.roi_interval), background=True)
        level = min(codec.levels - 1, level + config.roi_boost)
    source = open_source(config.source, loop=config.loop, size=config.size)
    security = ServerSecurity(config.key, config.allow) if config.secure else None
    video = VideoSettings(config.keyframe_interval, config.slice_rows, config.deadzone)
    publisher = FramePublisher(
        codec,
        config.bind,
        config.stream_id,
        config.reference,
        security=security,
        video=video,
        roi=roi,
        drop_slices=config.drop_slices,
    )
    feedback = None
    if config.feedback != "off":
        address = feedback_address(config.bind) if config.feedback == "auto" else config.feedback
        feedback = FeedbackServer(address, publisher.context, security)
    heard = ReceiverReports()
    reports = keyframe_requests = key_frames = dropped_slices = 0
    key_gate = KeyFrameGate()
    fps = config.fps or source.fps
    rate = None
    if config.rate_kbps is not None:
        rate = RateController(config.rate_kbps, fps or 30.0, codec.levels, clock=time.perf_counter)
    elif feedback is not None and config.quality is None:  # adapt to receivers' reports
        rate = RateController.adaptive(fps or 30.0, codec.levels, level, time.perf_counter)
    print(
        f"sender: {source.description} -> {config.bind}, model {name} "
        f"({codec.model_hash}) level {level} on {codec.device}"
        + (f", paced at {fps:.1f} fps" if fps else ""),
        flush=True,
    )

    time.sleep(config.warmup)
    started = time.perf_counter()
    next_due = started
    sent, window_bytes, window_frames, total_bytes = 0, 0, 0, 0
    keep_up, handled, handled_since = KeepUpWatch(fps), 0, started  # frames sent or skipped
    busy_s = 0.0  # time spent on the frames handled since handled_since (not waiting for one)
    reference_bytes, told_narrow = 0, False
    # Bounded (an hour at 30 fps) so a sender can run unattended for days.
    encode_ms: deque[float] = deque(maxlen=108_000)
    bpp: deque[float] = deque(maxlen=108_000)
    window_start = started
    with stop_on_signals() as stop, contextlib.ExitStack() as display:
        dashboard = None
        if config.dashboard:
            dashboard = display.enter_context(Dashboard(f"latentcast sender {config.bind}"))
        try:
            for frame in source:
                frame_in = time.perf_counter()
                if stop["stop"]:
                    break
                if config.frames is not None and sent >= config.frames:
                    break
                if config.duration is not None and time.perf_counter() - started >= config.duration:
                    break
                if feedback is not None:
                    for peer, report in feedback.poll():
                        if report.keyframe:  # a joining or out-of-sync receiver
                            keyframe_requests += 1
                            key_gate.request()
                        if not (report.keyframe and report.frames == 0 and peer in heard):
                            heard.add(peer, report, time.perf_counter())  # the last statistics
                        reports += 1
                    current = heard.latest(time.perf_counter())
                    if rate is not None:
                        rate.adapt_to_receivers(current, time.perf_counter())
                        if rate.cuts and not told_narrow and reference_bytes > total_bytes:
                            told_narrow = True
                            print(
                                "sender: a receiver falls behind, and the lossless originals "
                                f"sent for PSNR ({reference_bytes / max(sent, 1) / 1000:.0f} kB "
                                "a frame) are more than the video: on a narrow link start "
                                "receivers with --no-psnr (then none is sent to them)",
                                file=sys.stderr,
                                flush=True,
                            )
                for line in publisher.refused_handshakes():
                    print(f"sender: {line}", file=sys.stderr, flush=True)
                if key_gate.due(time.perf_counter()):
                    publisher.request_key_frame()
                if rate is not None:
                    chosen = rate.choose(publisher.next_is_key())
                    if chosen is None:  # even the lowest level would overrun the rate: skip
                        rate.skip()
                        handled += 1
                        busy_s += time.perf_counter() - frame_in
                        next_due = pace(next_due, fps)
                        continue
                    level = chosen
                result = publisher.send(frame, level)
                if result.kind == KEY:
                    key_frames += 1
                    key_gate.key_frame_sent(time.perf_counter())
                dropped_slices += result.dropped_slices
                if rate is not None:
                    rate.update(level, 8 * result.message_bytes, result.kind == KEY)
                sent += 1
                handled += 1
                window_frames += 1
                window_bytes += result.message_bytes
                total_bytes += result.message_bytes
                reference_bytes += result.reference_bytes
                encode_ms.append(result.encode_ms)
                bpp.append(bits_per_pixel(result.payload_bytes, result.height, result.width))
                now = time.perf_counter()
                busy_s += now - frame_in
                if now - handled_since >= 1.0:
                    handled_per_s = handled / (now - handled_since)
                    if keep_up.second(handled_per_s, busy_s / (now - handled_since)):
                        recent_ms = statistics.median(last_items(encode_ms, max(handled, 1)))
                        print(
                            keep_up_hint(name, handled_per_s, fps, recent_ms),
                            file=sys.stderr,
                            flush=True,
                        )
                    handled, handled_since, busy_s = 0, now, 0.0
                if now - window_start >= 1.0 and dashboard is not None:
                    span, elapsed = now - window_start, now - started
                    recent = last_items(encode_ms, window_frames)
                    common = {
                        "level": level,
                        "receivers_heard": len(heard),
                        "keyframes": key_frames,
                    }
                    dashboard.update(
                        common
                        | {
                            "frames": window_frames,
                            "fps": window_frames / span,
                            "kbps": window_bytes * 8 / span / 1000,
                            "encode_ms": statistics.median(recent),
                        },
                        common
                        | {
                            "frames": sent,
                            "fps": sent / elapsed,
                            "kbps": total_bytes * 8 / elapsed / 1000,
                            "encode_ms": statistics.median(encode_ms),
                        },
                    )
                    window_start, window_frames, window_bytes = now, 0, 0
                elif now - window_start >= 1.0 and not config.quiet:
                    span = now - window_start
                    print(
                        f"sender: {sent} frames  {window_frames / span:5.1f} fps  "
                        f"{window_bytes * 8 / span / 1000:8.1f} kbps  "
                        f"encode {statistics.median(last_items(encode_ms, window_frames)):6.1f} ms",
                        flush=True,
                    )
                    window_start, window_frames, window_bytes = now, 0, 0
                next_due = pace(next_due, fps)
        finally:
            if feedback is not None:
                feedback.close()
            publisher.close()
            source.close()
    elapsed = max(time.perf_counter() - started, 1e-9)
    summary = {
        "frames": sent,
        "seconds": round(elapsed, 3),
        "fps": sent / elapsed,
        "kbps": total_bytes * 8 / elapsed / 1000,
        "bpp_mean": statistics.fmean(bpp) if bpp else None,
        "encode_ms_median": statistics.median(encode_ms) if encode_ms else None,
        "model_hash": codec.model_hash,
        "level": level,
        "receivers_heard": len(heard),
        "reports": reports,
        "keyframe_requests": keyframe_requests,
        "key_frames": key_frames,
        "dropped_slices": dropped_slices,
        "feedback_rejected": feedback.rejected if feedback is not None else {},
        "refused_handshakes": publisher.refused,
        "rate_skipped_frames": rate.skipped if rate is not None else 0,
        "rate_target_kbps": rate.target_kbps if rate is not None and rate.limited else None,
    }
    print("sender summary: " + json.dumps(summary), flush=True)
    if config.stats_json:
        with open(config.stats_json, "w") as handle:
            json.dump(summary, handle, indent=2)
    return summary
