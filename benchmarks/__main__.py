"""``python -m benchmarks rd|speed|video|rate|roi|stream|conceal|inpaint|inpaint-example|denoise``:
thin argparse shell over the benchmarks (``stream --link-kbps M`` needs root for the link)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sender.__main__ import parse_size
from shared.cli import (
    ArgumentParser,
    folder_to_write,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
)
from shared.codec import PRECISIONS
from shared.memory import keep_freed_memory
from shared.registry import DENOISE_MODEL, STRONG_DENOISE_MODEL

from .rd import CLASSIC
from .stream import DEFAULT_QUEUE_MS

RATE_SETTLE_S = 2.0  # seconds before ``rate`` starts to measure


def noise_sigma(text: str) -> float:
    """An argparse type: a noise standard deviation in (0, 1) of the full range."""
    value = positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be a fraction of the range below 1, not {text!r}")
    return value


def stream_argument_problem(args) -> str | None:
    """What is wrong with ``stream``'s arguments, in one line, or ``None``."""
    for name in ("fps", "duration", "rate_kbps", "link_kbps", "queue_ms"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            return f"--{name.replace('_', '-')} must be positive"
    if not 0 <= args.loss < 1:
        return "--loss is a fraction of packets, 0 <= P < 1 (0.01 = 1%)"
    if args.loss > 0 and args.link_kbps is None:
        return "--loss needs --link-kbps (the loss is applied on the shaped link)"
    if args.threads < 1:
        return "--threads must be at least 1"
    source = args.source
    if source not in ("sample", "auto") and not source.isdigit() and not Path(source).exists():
        return f"--source {source!r}: no such file or folder"
    return None


def _stream(args) -> int:
    from .stream import StreamRunError, StreamSettings, StreamSetupError, run_stream

    settings = StreamSettings(
        out=args.out,
        source=args.source,
        model=args.model,
        size=args.size,
        fps=args.fps,
        duration=args.duration,
        rate_kbps=args.rate_kbps,
        link_kbps=args.link_kbps,
        loss=args.loss,
        queue_ms=args.queue_ms,
        threads=args.threads,
        psnr=args.psnr,
    )
    try:
        run_stream(settings)
    except StreamSetupError as error:
        print(f"benchmarks stream: error: {error}", file=sys.stderr)
        return 2
    except StreamRunError as error:
        print(f"benchmarks stream: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "benchmarks stream: interrupted; processes stopped, network namespaces removed",
            file=sys.stderr,
        )
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m benchmarks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    rd = commands.add_parser("rd", help="rate-distortion on an image folder (e.g. Kodak)")
    rd.add_argument("--images", required=True, help="folder of PNG images")
    rd.add_argument("--out", required=True, type=folder_to_write, help="output folder")
    rd.add_argument("--models", nargs="*", default=None, help="zoo names or model files")
    rd.add_argument(
        "--classic", nargs="*", default=None, choices=list(CLASSIC), help="default: all"
    )
    rd.add_argument("--limit", type=positive_int, default=None, help="use only the first N images")
    rd.add_argument("--reference-rd", default=None, help="folder of published RD curves")
    rd.add_argument(
        "--threads", type=non_negative_int, default=0, help="PyTorch threads (0 = default)"
    )
    speed = commands.add_parser("speed", help="per-stage speed vs x264, JPEG and CompressAI")
    speed.add_argument("--out", required=True, type=folder_to_write, help="output folder")
    speed.add_argument("--videos", default=None, help="folder with webcam_* and *720p* clips")
    speed.add_argument(
        "--model", default=None, help="zoo name or model file (default: the senders' default)"
    )
    speed.add_argument("--quality", type=int, default=None, help="level (default: middle)")
    speed.add_argument("--precision", choices=PRECISIONS, default="auto")
    speed.add_argument("--frames", type=positive_int, default=60, help="frames per size")
    video = commands.add_parser("video", help="video RD: intra-only vs inter vs x264")
    video.add_argument("--videos", required=True, help="folder with the test clips")
    video.add_argument("--out", required=True, type=folder_to_write, help="output folder")
    video.add_argument("--model", default="realtime", help="zoo name or model file")
    video.add_argument("--frames", type=positive_int, default=150, help="frames per clip")
    video.add_argument("--keyframe-interval", type=int, default=300, help="for ours and x264")
    video.add_argument("--levels", type=int, nargs="*", default=None, help="default: all")
    video.add_argument("--clips", nargs="*", default=None, help="glob patterns in --videos")
    video.add_argument("--no-x264", dest="x264", action="store_false")
    video.add_argument("--threads", type=non_negative_int, default=1, help="PyTorch threads")
    rate = commands.add_parser("rate", help="rate-control accuracy on real clips (offline)")
    rate.add_argument("--videos", required=True, help="folder with the test clips")
    rate.add_argument("--out", required=True, type=folder_to_write, help="output folder")
    rate.add_argument("--model", default="realtime", help="zoo name or model file")
    rate.add_argument("--rate-kbps", type=float, nargs="+", default=[300.0, 800.0])
    rate.add_argument("--seconds", type=float, default=20.0, help="stream time per run")
    rate.add_argument("--clips", nargs="*", default=None, help="glob patterns in --videos")
    rate.add_argument("--threads", type=non_negative_int, default=1, help="PyTorch threads")
    roi = commands.add_parser("roi", help="region-of-interest (face) vs uniform coding")
    roi.add_argument("--videos", required=True, help="folder with the talking-head clips")
    roi.add_argument("--out", required=True, type=folder_to_write, help="output folder")
    roi.add_argument("--model", default="realtime", help="zoo name or model file")
    roi.add_argument("--frames", type=positive_int, default=90, help="frames per clip")
    roi.add_argument("--levels", type=int, nargs="*", default=None, help="default: all")
    roi.add_argument("--clips", nargs="*", default=None, help="glob patterns in --videos")
    roi.add_argument("--threads", type=non_negative_int, default=1, help="PyTorch threads")
    roi.add_argument(
        "--key-deadzone", type=non_negative_float, default=None, help="outside, key frames"
    )
    roi.add_argument(
        "--deadzone", type=non_negative_float, default=None, help="outside, predicted frames"
    )
    roi.add_argument(
        "--skip-l1", type=non_negative_int, default=None, help="outside, predicted frames"
    )
    face_search = commands.add_parser(
        "face-search", help="near-face search vs whole-frame face scans (--roi face)"
    )
    face_search.add_argument("--videos", required=True, help="folder with the clips")
    face_search.add_argument("--out", required=True, type=folder_to_write, help="output folder")
    face_search.add_argument("--frames", type=positive_int, default=90, help="frames per clip")
    face_search.add_argument(
        "--step", type=positive_int, default=10, help="scan every Nth frame (the sender's 10)"
    )
    face_search.add_argument("--clips", nargs="*", default=None, help="glob patterns in --videos")
    face_search.add_argument(
        "--moving-clip",
        default=None,
        help="also track a moving face made from this clip's first frame, in real time",
    )
    face_search.add_argument(
        "--periods",
        type=positive_float,
        nargs="+",
        default=[20.0, 8.0, 4.0],
        help="with --moving-clip: periods of the sideways motion (s)",
    )
    face_search.add_argument(
        "--seconds", type=positive_float, default=20.0, help="with --moving-clip: per run"
    )
    stream = commands.add_parser(
        "stream", help="sender and receiver processes, optionally over a shaped link"
    )
    stream.add_argument("--out", required=True, type=folder_to_write, help="output folder")
    stream.add_argument(
        "--source", default="sample", help="video file, image folder, camera index or 'sample'"
    )
    stream.add_argument("--model", default="realtime", help="zoo name or model file")
    stream.add_argument("--size", type=parse_size, default=(640, 480), help="frame size WxH")
    stream.add_argument("--fps", type=float, default=30.0, help="the sender's frame rate")
    stream.add_argument("--duration", type=float, default=30.0, help="seconds of streaming")
    stream.add_argument(
        "--rate-kbps",
        type=float,
        default=None,
        help="the sender's target bitrate (default: none, it adapts to receiver feedback)",
    )
    stream.add_argument(
        "--link-kbps",
        type=float,
        default=None,
        help="shape a link of this rate between two network namespaces (root, ip, tc)",
    )
    stream.add_argument(
        "--loss",
        type=float,
        default=0.0,
        help="drop this fraction of packets at the receiver (needs --link-kbps and iptables)",
    )
    stream.add_argument(
        "--queue-ms",
        type=float,
        default=DEFAULT_QUEUE_MS,
        help="tbf queue bound in front of the link, in ms (default %(default)g)",
    )
    stream.add_argument("--threads", type=int, default=1, help="PyTorch threads per process")
    stream.add_argument(
        "--no-psnr",
        dest="psnr",
        action="store_false",
        help="no lossless originals, no PSNR (and no monitoring receiver on a link)",
    )
    conceal = commands.add_parser("conceal", help="lost-slice concealment: inpaint/copy/gray")
    conceal.add_argument("--videos", required=True, help="folder with the test clips")
    conceal.add_argument("--out", required=True, type=folder_to_write, help="output folder")
    conceal.add_argument("--model", default="realtime", help="codec: zoo name or model file")
    conceal.add_argument("--inpaint-model", default="inpaint", help="zoo name or model file")
    conceal.add_argument("--frames", type=positive_int, default=100, help="frames per clip")
    conceal.add_argument("--quality", type=int, default=None, help="level (default: middle)")
    conceal.add_argument("--slice-rows", type=int, default=8, help="latent rows per slice")
    conceal.add_argument(
        "--drop",
        type=probability,
        default=None,
        help="lose each slice with this probability (default: exactly one slice per frame)",
    )
    conceal.add_argument("--clips", nargs="*", default=None, help="glob patterns in --videos")
    conceal.add_argument("--threads", type=non_negative_int, default=1, help="PyTorch threads")
    example = commands.add_parser("inpaint-example", help="remove a caption by inpainting")
    example.add_argument("--image", required=True, help="image to overlay a caption on")
    example.add_argument("--out", required=True, type=folder_to_write, help="output folder")
    example.add_argument("--text", default="latentcast|inpainting", help="'|' breaks lines")
    example.add_argument(
        "--inpaint-model",
        default=None,
        help="zoo name or model file (default: receiver.inpaint's, inpaint-image)",
    )
    inpaint_set = commands.add_parser(
        "inpaint", help="offline inpainting on a folder: network vs smooth fill vs OpenCV"
    )
    inpaint_set.add_argument("--images", required=True, help="folder of PNG/JPEG images")
    inpaint_set.add_argument("--out", required=True, type=folder_to_write, help="output folder")
    inpaint_set.add_argument(
        "--inpaint-models",
        nargs="+",
        default=["inpaint-image", "inpaint"],
        help="zoo names or model files of the networks to compare",
    )
    inpaint_set.add_argument(
        "--limit", type=positive_int, default=None, help="use only the first N images"
    )
    denoise = commands.add_parser(
        "denoise", help="noisy images: regular codec vs denoising codec vs NLM + JPEG"
    )
    denoise.add_argument("--images", required=True, help="folder of clean PNG images")
    denoise.add_argument("--out", required=True, type=folder_to_write, help="output folder")
    denoise.add_argument(
        "--sigmas",
        nargs="+",
        type=noise_sigma,
        default=[0.05, 0.1],
        help="noise standard deviations, fractions of the full range (0..1)",
    )
    denoise.add_argument(
        "--regular", default="fast", help="(a): the model the denoiser was fine-tuned from"
    )
    denoise.add_argument("--denoise-model", default=DENOISE_MODEL, help="(b): zoo name or file")
    denoise.add_argument(
        "--strong-model",
        default=STRONG_DENOISE_MODEL,
        help="(b) on images whose noise reads as strong, as the sender's --denoise does: zoo "
        "name or file; 'none': --denoise-model throughout",
    )
    denoise.add_argument(
        "--limit", type=positive_int, default=None, help="use only the first N images"
    )
    denoise.add_argument(
        "--threads", type=non_negative_int, default=0, help="PyTorch threads (0 = default)"
    )
    denoise.add_argument(
        "--tune-nlm-on",
        default=None,
        help="first choose NLM's strength per sigma on this folder (training images, never "
        "the evaluation images)",
    )
    args = parser.parse_args(argv)
    if args.command == "stream":
        problem = stream_argument_problem(args)
        if problem:
            parser.error(problem)
    else:  # (stream's processes report on their own sources)
        # FFmpeg's own lines ("moov atom not found") would precede our one-line error about
        # a broken clip; OpenCV reads this once, at its first capture (-8: AV_LOG_QUIET).
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    keep_freed_memory()
    try:
        if args.command in _TORCH_THREADS:
            import torch

            threads = 1 if args.command in ("inpaint-example", "inpaint") else args.threads
            if threads:  # 0: PyTorch's default
                torch.set_num_threads(threads)
        return _RUNNERS[args.command](args)
    except (OSError, ValueError, KeyError) as error:  # ModelFileError is a ValueError
        # A KeyError's str() is the repr of its message, quotes and all.
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"benchmarks: error: {message}", file=sys.stderr)
        return 2


def _clips(args, default: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(args.clips) if args.clips else default


def _face_search(args) -> int:
    from .face_search import run_face_search
    from .roi import DEFAULT_CLIPS

    run_face_search(
        args.videos,
        args.out,
        args.frames,
        args.step,
        _clips(args, DEFAULT_CLIPS),
        moving_clip=args.moving_clip,
        periods_s=tuple(args.periods),
        seconds=args.seconds,
    )
    return 0


def _rd(args) -> int:
    from .rd import run_rd

    run_rd(args.images, args.out, args.models, args.classic, args.limit, args.reference_rd)
    return 0


def _speed(args) -> int:
    from shared.codec import default_model

    from .speed import run_speed

    model = args.model or default_model("cpu", args.precision)
    run_speed(args.out, args.videos, model, args.quality, args.precision, args.frames)
    return 0


def _video(args) -> int:
    from .video import DEFAULT_CLIPS, run_video

    run_video(
        args.videos,
        args.out,
        args.model,
        args.frames,
        args.keyframe_interval,
        args.levels,
        _clips(args, DEFAULT_CLIPS),
        args.x264,
    )
    return 0


def _rate(args) -> int:
    from .rate import DEFAULT_CLIPS, WINDOW_S, run_rate

    if any(target <= 0 for target in args.rate_kbps):
        raise ValueError("--rate-kbps must be positive")
    shortest = RATE_SETTLE_S + WINDOW_S
    if not args.seconds >= shortest:
        raise ValueError(
            f"--seconds must be >= {shortest:g} ({RATE_SETTLE_S:g} s to settle, then one "
            f"{WINDOW_S:g} s window), not {args.seconds:g}"
        )
    clips = _clips(args, DEFAULT_CLIPS)
    run_rate(args.videos, args.out, args.model, args.rate_kbps, args.seconds, RATE_SETTLE_S, clips)
    return 0


def _roi(args) -> int:
    import dataclasses

    from shared.roi import RoiSettings

    from .roi import DEFAULT_CLIPS, run_roi

    strengths = {"key_deadzone": args.key_deadzone, "deadzone": args.deadzone}
    strengths["skip_l1"] = args.skip_l1
    settings = dataclasses.replace(
        RoiSettings(), **{k: v for k, v in strengths.items() if v is not None}
    )
    clips = _clips(args, DEFAULT_CLIPS)
    run_roi(args.videos, args.out, args.model, args.frames, args.levels, clips, settings)
    return 0


def _conceal(args) -> int:
    from .conceal import DEFAULT_CLIPS, run_conceal

    run_conceal(
        args.videos,
        args.out,
        args.model,
        args.frames,
        args.quality,
        args.inpaint_model,
        _clips(args, DEFAULT_CLIPS),
        args.slice_rows,
        args.drop,
    )
    return 0


def _inpaint_example(args) -> int:
    from .inpaint_example import run_example

    run_example(args.image, args.out, args.text, args.inpaint_model)
    return 0


def _inpaint_set(args) -> int:
    from .inpaint_example import run_inpaint_set

    run_inpaint_set(args.images, args.out, tuple(args.inpaint_models), limit=args.limit)
    return 0


def _denoise(args) -> int:
    from .denoise import run_denoise

    run_denoise(
        args.images,
        args.out,
        args.sigmas,
        args.regular,
        args.denoise_model,
        None if args.strong_model == "none" else args.strong_model,
        args.limit,
        tune_nlm_on=args.tune_nlm_on,
    )
    return 0


_RUNNERS = {
    "rd": _rd,
    "speed": _speed,
    "video": _video,
    "rate": _rate,
    "roi": _roi,
    "face-search": _face_search,
    "stream": _stream,
    "conceal": _conceal,
    "inpaint-example": _inpaint_example,
    "inpaint": _inpaint_set,
    "denoise": _denoise,
}
# Commands that run the codec in this process (speed sets its own thread counts; stream
# passes --threads to the processes it starts).
_TORCH_THREADS = {"rd", "video", "rate", "roi", "conceal", "inpaint-example", "inpaint", "denoise"}


if __name__ == "__main__":
    sys.exit(main())
