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
from shared.codec import ImageCodec, configure_threads, default_model
from shared.dashboard import Dashboard
from shared.feedback import FeedbackServer, feedback_address
from shared.memory import keep_freed_memory
from shared.metrics import bits_per_pixel
from shared.noise import NoiseWatch
from shared.registry import (
    DEFAULT_MODEL,
    DENOISE_MODEL,
    DENOISE_MODELS,
    LITE_MODEL,
    REALTIME_DENOISE_MODEL,
    STRONG_DENOISE_MODEL,
    faster_model,
)
from shared.roi import FaceRoi, RoiSettings
from shared.security import ServerSecurity
from shared.streak import Streak
from shared.video import KEY, VideoSettings

from .publisher import FramePublisher
from .rate import RateController
from .sources import open_source


@dataclass
class SenderConfig:
    source: str = "sample"
    bind: str = "tcp://*:5555"
    model: str | None = None  # zoo name or model file; None = default_model(device, precision)
    # Noisy frames coded as clean: alone, the DENOISE_MODEL or the STRONG_DENOISE_MODEL as the
    # frames' noise calls for (matches_noise); with --model, that denoising model throughout.
    denoise: bool = False
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
        self.slow = Streak(self.SLOW_SECONDS)

    def second(self, handled_per_s: float, busy_share: float) -> bool:
        if not self.fps:
            return False
        return self.slow.add(
            handled_per_s < self.SHARE * self.fps and busy_share >= self.BUSY_SHARE
        )


def keep_up_hint(model: str, handled_per_s: float, fps: float, encode_ms: float) -> str:
    """What to tell a user whose sender codes ``handled_per_s`` of ``fps`` frames a second."""
    said = (
        f"sender: coding keeps up with {handled_per_s:.0f} of the source's {fps:.0f} frames a "
        f"second (encode {encode_ms:.0f} ms a frame)"
    )
    faster = faster_model(model)
    if faster == REALTIME_DENOISE_MODEL:
        return said + (
            f": the {model!r} model is slow on this CPU; --model {faster} "
            f"denoises at the {DEFAULT_MODEL!r} model's speed"
        )
    if faster == LITE_MODEL:
        return said + f": --model {faster} does half the transforms' work, for a few more bits"
    if faster is not None:
        return said + f": --model {faster} is the model made for real time"
    return said + (
        ": the CPU is busy (a receiver on the same machine?) or too slow for this size; a "
        "smaller --size or --fps helps"
    )


#: A receiver whose reported decode time is at least this share of the time between frames
#: falls behind for want of CPU, not bandwidth (it also has to show, measure and record).
SLOW_RECEIVER_SHARE = 0.8


def slow_receiver(reports: list[wire.ReportMessage], fps: float) -> wire.ReportMessage | None:
    """The report of the slowest receiver whose decoding alone (``decode_ms``, its median
    over the report's second) takes at least ``SLOW_RECEIVER_SHARE`` of the ``1000 / fps``
    ms between frames, or ``None`` when all decode fast enough."""
    slow = [r for r in reports if r.decode_ms * fps >= SLOW_RECEIVER_SHARE * 1000]
    return max(slow, key=lambda r: r.decode_ms, default=None)


def slow_receiver_hint(model: str, decode_ms: float, fps: float) -> str:
    """What to tell a user whose receiver decodes a frame in ``decode_ms`` at ``fps``."""
    said = (
        f"sender: a receiver falls behind because decoding takes it {decode_ms:.0f} ms a "
        f"frame, at least {SLOW_RECEIVER_SHARE:.0%} of the {1000 / fps:.0f} ms between frames: "
        "its CPU, not the link, is the limit, and the rate is lowered until it keeps up"
    )
    faster = faster_model(model)
    if faster is not None:
        return said + f"; --model {faster} decodes faster"
    return said + "; a smaller --size or a lower --fps lightens its work"


def last_items(values: deque, count: int) -> list:
    """The last ``count`` items of ``values`` without copying the whole deque (order is
    reversed; used for medians)."""
    return list(itertools.islice(reversed(values), count))


#: How many frame slots a paced source (file, images) may fall behind and still catch up,
#: as a camera's few buffered frames let a reader that was briefly slow catch up. Beyond
#: that the lost time is given up (the video then plays slower than real time).
CATCH_UP_FRAMES = 3


def pace(next_due: float, fps: float | None) -> float:
    """The slot of the next frame, ``1 / fps`` s after ``next_due``; sleeps until it comes.
    A slot already past is kept (no sleep: the sender catches up) while it is at most
    ``CATCH_UP_FRAMES`` slots late, else the schedule restarts now."""
    if not fps:
        return next_due
    next_due += 1.0 / fps
    now = time.perf_counter()
    if next_due > now:
        time.sleep(next_due - now)
    elif now - next_due > CATCH_UP_FRAMES / fps:
        return now
    return next_due


def model_name(config: SenderConfig) -> str:
    """The model to load: ``--model``, else ``default_model`` for this machine; with
    ``--denoise`` a denoising zoo model (``DENOISE_MODEL`` unless ``--model`` names another
    of ``DENOISE_MODELS``)."""
    if not config.denoise:
        return config.model or default_model(config.device, config.precision)
    if config.model is None:
        return DENOISE_MODEL
    if config.model not in DENOISE_MODELS:
        raise ValueError(
            f"--denoise takes a denoising zoo model ({', '.join(DENOISE_MODELS)}), "
            f"not --model {config.model}"
        )
    return config.model


def matches_noise(config: SenderConfig) -> bool:
    """Whether the sender picks its denoising model by the frames' measured noise
    (``--denoise`` without ``--model``): ``DENOISE_MODEL`` for mild noise,
    ``STRONG_DENOISE_MODEL`` for strong noise (``shared.noise.NoiseWatch``)."""
    return config.denoise and config.model is None


class SendLoop:
    """One run of the sender: set-up, the send loop, and the run's summary.

    Times are ``time.perf_counter()`` seconds."""

    def __init__(self, config: SenderConfig) -> None:
        """Load the model, open the source and the sockets, print the start line and wait
        ``warmup`` seconds for subscribers; the run's clock starts after that."""
        self.config = config
        self.model = model_name(config)
        if config.stats_json:
            check_output_file(config.stats_json, "--stats-json")
        configure_threads(config.threads)
        keep_freed_memory()
        self.codec = ImageCodec.load(self.model, config.device, config.precision)
        self.noise: NoiseWatch | None = None
        self.codecs = {self.model: self.codec}  # the models this run may code with, by name
        if matches_noise(config):
            self.noise = NoiseWatch()
            self.codecs[STRONG_DENOISE_MODEL] = ImageCodec.load(
                STRONG_DENOISE_MODEL, config.device, config.precision
            )
        self.frames_by_model = dict.fromkeys(self.codecs, 0)
        self.level = self.codec.levels // 2 if config.quality is None else config.quality
        self.codec.check_level(self.level)
        roi = None
        if config.roi is not None:  # the bits saved outside the faces buy a higher level
            roi = FaceRoi(
                self.codec.stride, RoiSettings(interval=config.roi_interval), background=True
            )
            self.level = min(self.codec.levels - 1, self.level + config.roi_boost)
        self._opened = contextlib.ExitStack()  # what run() closes, or this if set-up fails
        try:
            self._open_and_start(config, roi)
        except BaseException:
            self._opened.close()
            raise

    def _open_and_start(self, config: SenderConfig, roi: FaceRoi | None) -> None:
        """Open the source and the sockets (each registered in ``self._opened``), set up the
        run's state, print the start line and wait the warm-up."""
        if roi is not None:
            self._opened.callback(roi.close)  # its detector thread (the publisher's close too)
        self.source = open_source(config.source, loop=config.loop, size=config.size)
        self._opened.callback(self.source.close)
        security = ServerSecurity(config.key, config.allow) if config.secure else None
        self.publisher = FramePublisher(
            self.codec,
            config.bind,
            config.stream_id,
            config.reference,
            security=security,
            video=VideoSettings(config.keyframe_interval, config.slice_rows, config.deadzone),
            roi=roi,
            drop_slices=config.drop_slices,
        )
        self._opened.callback(self.publisher.close)
        self.feedback: FeedbackServer | None = None
        if config.feedback != "off":
            address = (
                feedback_address(config.bind) if config.feedback == "auto" else config.feedback
            )
            self.feedback = FeedbackServer(address, self.publisher.context, security)
            self._opened.callback(self.feedback.close)
        self.heard = ReceiverReports()
        self.key_gate = KeyFrameGate()
        self.fps: float | None = config.fps or self.source.fps  # None or 0: unpaced
        self.rate = self._rate_controller()
        self.dashboard: Dashboard | None = None  # with --dashboard, while the loop runs

        self.reports = 0  # statistics reports and key-frame requests received
        self.keyframe_requests = 0
        self.key_frames = 0
        self.dropped_slices = 0  # by --drop-slices
        self.sent = 0
        self.total_bytes = 0  # of the frame messages sent
        self.reference_bytes = 0  # of the lossless originals sent for the receivers' PSNR
        self.told_behind = False  # why a receiver falls behind is told once
        # Bounded (an hour at 30 fps) so a sender can run unattended for days.
        self.encode_ms: deque[float] = deque(maxlen=108_000)
        self.bpp: deque[float] = deque(maxlen=108_000)
        self.window_frames = 0  # frames sent in the current one-second statistics window
        self.window_bytes = 0
        self.keep_up = KeepUpWatch(self.fps)
        self.handled = 0  # frames sent or skipped since handled_since
        # Time spent on the frames handled since handled_since (not waiting for one).
        self.busy_s = 0.0

        self._print_start_line()
        time.sleep(config.warmup)
        self.started = time.perf_counter()
        self.next_due = self.started  # the pacing slot of the frame just handled
        self.handled_since = self.started  # start of the current keep-up second
        self.window_start = self.started  # of the current one-second statistics window

    def _rate_controller(self) -> RateController | None:
        """A controller for ``--rate-kbps``, or one adapting to the receivers' reports when
        they are heard and no ``--quality`` is fixed; else ``None`` (a fixed level)."""
        config, levels = self.config, self.codec.levels
        if config.rate_kbps is not None:
            return RateController(
                config.rate_kbps, self.fps or 30.0, levels, clock=time.perf_counter
            )
        if self.feedback is not None and config.quality is None:  # adapt to receivers' reports
            return RateController.adaptive(self.fps or 30.0, levels, self.level, time.perf_counter)
        return None

    def _print_start_line(self) -> None:
        config, codec = self.config, self.codec
        print(
            f"sender: {self.source.description} -> {config.bind}, model {self.model} "
            f"({codec.model_hash})"
            + (f" or {STRONG_DENOISE_MODEL} by the frames' noise" if self.noise else "")
            + f" level {self.level} on {codec.device}"
            + (f", paced at {self.fps:.1f} fps" if self.fps else ""),
            flush=True,
        )

    def run(self, stop: dict) -> None:
        """Send the source's frames until a stop condition or ``stop["stop"]`` (set by a
        signal); the sockets and the source are closed however the loop ends."""
        # What set-up opened closes last, also if the dashboard or the loop fails.
        with self._opened, contextlib.ExitStack() as display:
            if self.config.dashboard:
                self.dashboard = display.enter_context(
                    Dashboard(f"latentcast sender {self.config.bind}")
                )
            for frame in self.source:
                frame_in = time.perf_counter()
                if stop["stop"] or self._should_stop():
                    break
                self._read_reports()
                for line in self.publisher.refused_handshakes():
                    print(f"sender: {line}", file=sys.stderr, flush=True)
                if self.key_gate.due(time.perf_counter()):
                    self.publisher.request_key_frame()
                if self.rate is not None and not self._choose_level(self.rate):
                    self._skip(self.rate, frame_in)
                else:
                    if self.noise is not None:
                        self._match_noise(self.noise, frame)
                    # A frame taken late from its slot was due (captured) at the slot.
                    late_s = max(0.0, frame_in - self.next_due) if self.fps else 0.0
                    done = self._send(frame, frame_in, late_s)
                    self._each_second(done)
                self.next_due = pace(self.next_due, self.fps)

    def _should_stop(self) -> bool:
        """Whether ``frames`` or ``duration`` is reached."""
        config = self.config
        if config.frames is not None and self.sent >= config.frames:
            return True
        return config.duration is not None and time.perf_counter() - self.started >= config.duration

    def _read_reports(self) -> None:
        """Take the receivers' reports: key-frame requests to the gate, statistics to the
        adaptive rate."""
        if self.feedback is None:
            return
        for peer, report in self.feedback.poll():
            if report.keyframe:  # a joining or out-of-sync receiver
                self.keyframe_requests += 1
                self.key_gate.request()
            if not (report.keyframe and report.frames == 0 and peer in self.heard):
                self.heard.add(peer, report, time.perf_counter())  # the last statistics
            self.reports += 1
        current = self.heard.latest(time.perf_counter())
        if self.rate is not None:
            self.rate.adapt_to_receivers(current, time.perf_counter())
            self._hint_why_a_receiver_falls_behind(self.rate, current)

    def _hint_why_a_receiver_falls_behind(
        self, rate: RateController, reports: list[wire.ReportMessage]
    ) -> None:
        """Once per run, when the rate was cut for a receiver falling behind: name its slow
        decoding when that is the cause, else suggest --no-psnr when the PSNR originals
        outweigh the video (on a narrow link they are what clogs it)."""
        if not rate.cuts or self.told_behind:
            return
        slow = slow_receiver(reports, self.fps or 30.0)
        if slow is not None:
            hint = slow_receiver_hint(self.model, slow.decode_ms, self.fps or 30.0)
        elif self.reference_bytes > self.total_bytes:
            hint = (
                "sender: a receiver falls behind, and the lossless originals "
                f"sent for PSNR ({self.reference_bytes / max(self.sent, 1) / 1000:.0f} kB "
                "a frame) are more than the video: on a narrow link start "
                "receivers with --no-psnr (then none is sent to them)"
            )
        else:
            return
        self.told_behind = True
        print(hint, file=sys.stderr, flush=True)

    def _match_noise(self, noise: NoiseWatch, frame) -> None:
        """Code ``frame`` and those after it with the denoising model its noise calls for;
        a change is told in one line (it costs a key frame, so ``noise`` changes rarely)."""
        model = STRONG_DENOISE_MODEL if noise.observe(frame) else DENOISE_MODEL
        if model == self.model:
            return
        self.model, self.codec = model, self.codecs[model]
        self.publisher.use_codec(self.codec)
        print(
            f"sender: noise reads {noise.sigma:.3f} of the range: coding with model {model}",
            flush=True,
        )

    def _choose_level(self, rate: RateController) -> bool:
        """Set the next frame's level as ``rate`` chooses; ``False``: skip the frame, since
        even the lowest level would overrun the rate."""
        chosen = rate.choose(self.publisher.next_is_key())
        if chosen is None:
            return False
        self.level = chosen
        return True

    def _skip(self, rate: RateController, frame_in: float) -> None:
        """Count a frame that ``rate`` skipped (``frame_in``: when it came in)."""
        rate.skip()
        self.handled += 1
        self.busy_s += time.perf_counter() - frame_in

    def _send(self, frame, frame_in: float, late_s: float = 0.0) -> float:
        """Code and publish ``frame`` (come in at ``frame_in``, ``late_s`` seconds after its
        slot) and count it; returns when that was done."""
        result = self.publisher.send(frame, self.level, late_s=late_s)
        if result.kind == KEY:
            self.key_frames += 1
            self.key_gate.key_frame_sent(time.perf_counter())
        self.dropped_slices += result.dropped_slices
        if self.rate is not None:
            self.rate.update(self.level, 8 * result.message_bytes, result.kind == KEY)
        self.sent += 1
        self.frames_by_model[self.model] += 1
        self.handled += 1
        self.window_frames += 1
        self.window_bytes += result.message_bytes
        self.total_bytes += result.message_bytes
        self.reference_bytes += result.reference_bytes
        self.encode_ms.append(result.encode_ms)
        self.bpp.append(bits_per_pixel(result.payload_bytes, result.height, result.width))
        now = time.perf_counter()
        self.busy_s += now - frame_in
        return now

    def _each_second(self, now: float) -> None:
        """After a sent frame, once a second: whether coding keeps up, and the statistics."""
        self._check_keep_up(now)
        self._show(now)

    def _check_keep_up(self, now: float) -> None:
        """Once per second of frames handled, tell the user once when coding cannot keep
        up with the source (see KeepUpWatch)."""
        span = now - self.handled_since
        if span < 1.0:
            return
        handled_per_s = self.handled / span
        if self.keep_up.second(handled_per_s, self.busy_s / span):
            recent_ms = statistics.median(last_items(self.encode_ms, max(self.handled, 1)))
            print(
                keep_up_hint(self.model, handled_per_s, self.fps, recent_ms),
                file=sys.stderr,
                flush=True,
            )
        self.handled, self.handled_since, self.busy_s = 0, now, 0.0

    def _show(self, now: float) -> None:
        """Once a second, the last second's statistics on the dashboard, or as one status
        line (unless quiet)."""
        span = now - self.window_start
        if span < 1.0:
            return
        if self.dashboard is not None:
            self._update_dashboard(self.dashboard, span, now - self.started)
        elif not self.config.quiet:
            recent_ms = statistics.median(last_items(self.encode_ms, self.window_frames))
            roi = self.publisher.roi
            faces = f"  faces {len(roi.boxes)}" if roi is not None else ""
            print(
                f"sender: {self.sent} frames  {self.window_frames / span:5.1f} fps  "
                f"{self.window_bytes * 8 / span / 1000:8.1f} kbps  "
                f"encode {recent_ms:6.1f} ms{faces}",
                flush=True,
            )
        else:  # nothing shown: the window goes on
            return
        self.window_start, self.window_frames, self.window_bytes = now, 0, 0

    def _update_dashboard(self, dashboard: Dashboard, span: float, elapsed: float) -> None:
        """The last ``span`` seconds and the ``elapsed`` seconds since the start."""
        common = {
            "level": self.level,
            "receivers_heard": len(self.heard),
            "key_frames": self.key_frames,
        }
        roi = self.publisher.roi
        if roi is not None:  # the faces in use now and the detections run so far
            common |= {"faces": len(roi.boxes), "face_searches": sum(roi.searches.values())}
        if self.noise is not None and self.noise.sigma is not None:
            common["noise_sigma"] = self.noise.sigma
        window = {
            "frames": self.window_frames,
            "fps": self.window_frames / span,
            "kbps": self.window_bytes * 8 / span / 1000,
            "encode_ms": statistics.median(last_items(self.encode_ms, self.window_frames)),
        }
        total = {
            "frames": self.sent,
            "fps": self.sent / elapsed,
            "kbps": self.total_bytes * 8 / elapsed / 1000,
            "encode_ms": statistics.median(self.encode_ms),
        }
        dashboard.update(common | window, common | total)

    def summary(self, end: float) -> dict:
        """The run's totals, with rates over the time from the start (after the warm-up) to
        ``end``."""
        elapsed = max(end - self.started, 1e-9)
        rate, feedback, roi = self.rate, self.feedback, self.publisher.roi
        return {
            "frames": self.sent,
            "seconds": round(elapsed, 3),
            "fps": self.sent / elapsed,
            "kbps": self.total_bytes * 8 / elapsed / 1000,
            "bpp_mean": statistics.fmean(self.bpp) if self.bpp else None,
            "encode_ms_median": statistics.median(self.encode_ms) if self.encode_ms else None,
            "model_hash": self.codec.model_hash,
            "frames_by_model": self.frames_by_model,
            # --denoise alone: the median of the recent noise estimates (fraction of the range)
            "noise_sigma": self.noise.sigma if self.noise is not None else None,
            "level": self.level,
            "receivers_heard": len(self.heard),
            "reports": self.reports,
            "keyframe_requests": self.keyframe_requests,
            "key_frames": self.key_frames,
            "dropped_slices": self.dropped_slices,
            "feedback_rejected": feedback.rejected if feedback is not None else {},
            "refused_handshakes": self.publisher.refused,
            "rate_skipped_frames": rate.skipped if rate is not None else 0,
            "rate_target_kbps": rate.target_kbps if rate is not None and rate.limited else None,
            # --roi: face detections run (whole-frame scans, searches near known faces), and
            # their mean time (ms)
            "face_searches": dict(roi.searches) if roi is not None else None,
            "face_search_ms": (
                {k: 1000 * roi.search_s[k] / max(1, n) for k, n in roi.searches.items()}
                if roi is not None
                else None
            ),
        }


def run_sender(config: SenderConfig) -> dict:
    """Stream until the source ends, ``frames``/``duration`` is reached, or SIGINT/SIGTERM.

    Returns the summary (also written to ``stats_json`` when set).
    """
    loop = SendLoop(config)  # prints the start line and waits the warm-up
    with stop_on_signals() as stop:
        loop.run(stop)
    summary = loop.summary(time.perf_counter())
    print("sender summary: " + json.dumps(summary), flush=True)
    if config.stats_json:
        with open(config.stats_json, "w") as handle:
            json.dump(summary, handle, indent=2)
    return summary
