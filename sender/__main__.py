"""``python -m sender``: capture, encode and publish frames (argparse shell over
``sender.app.run_sender``)."""

from __future__ import annotations

import argparse
import sys

from shared import wire
from shared.cli import (
    ArgumentParser,
    device_name,
    feedback_option,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
    zmq_address,
)
from shared.codec import PRECISIONS
from shared.modelfile import ModelFileError
from shared.registry import DEFAULT_MODEL, DENOISE_MODEL, LITE_MODEL, STRONG_DENOISE_MODEL, ZOO
from shared.roi import ROI_MODES, RoiSettings
from shared.video import VideoSettings

from .app import SenderConfig, run_sender
from .sources import SourceError


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 640x480, not {text!r}") from None
    if not (16 <= width <= 4096 and 16 <= height <= 4096):
        raise argparse.ArgumentTypeError("size must be between 16x16 and 4096x4096")
    if width * height > wire.MAX_FRAME_PIXELS:
        raise argparse.ArgumentTypeError(
            f"{width}x{height} is larger than receivers decode (1920x1088 pixels)"
        )
    return width, height


def stream_id(text: str) -> str:
    if not 1 <= len(text) <= wire.MAX_STREAM_ID or not text.isprintable():
        raise argparse.ArgumentTypeError(
            f"must be 1..{wire.MAX_STREAM_ID} printable characters (receivers refuse others)"
        )
    return text


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m sender", description="Encode and publish frames.")
    p.add_argument(
        "--source",
        default="sample",
        help="camera index (0), video file, image file or folder, 'sample', "
        "or 'auto' (camera 0 if present, else sample)",
    )
    p.add_argument(
        "--bind", type=zmq_address, default="tcp://*:5555", help="ZeroMQ address to publish on"
    )
    p.add_argument(
        "--model",
        default=None,
        help=f"zoo model ({', '.join(ZOO)}) or model file path (default {DEFAULT_MODEL}, or "
        f"{LITE_MODEL} where the CPU computes in float32 only)",
    )
    p.add_argument(
        "--denoise",
        action="store_true",
        help=f"clean noisy frames while coding them: the {DENOISE_MODEL!r} zoo model, or "
        f"{STRONG_DENOISE_MODEL!r} while the frames' noise reads as strong; --model names one "
        "throughout (denoise-realtime: real time on one core, denoises less)",
    )
    p.add_argument("--quality", type=int, default=None, help="quality level (0 = lowest rate)")
    p.add_argument(
        "--rate-kbps",
        type=float,
        default=None,
        help="target bitrate: the level is chosen per frame (overrides --quality)",
    )
    p.add_argument(
        "--keyframe-interval",
        type=int,
        default=VideoSettings.keyframe_interval,
        help="a key frame every N frames (1 = intra only); receivers' requests add more",
    )
    p.add_argument(
        "--slice-rows",
        type=int,
        default=VideoSettings.slice_rows,
        help="latent rows per independently decodable slice (multiple of 4; 0 = one slice)",
    )
    p.add_argument(
        "--deadzone",
        type=float,
        default=VideoSettings.deadzone,
        help="predicted frames keep a latent unchanged within 0.5 + this of it (noise costs "
        "no bits; 0 = plain rounding)",
    )
    p.add_argument(
        "--roi",
        choices=ROI_MODES,
        default=None,
        help="region of interest: 'face' spends the bits on faces (OpenCV's face detector) "
        "and codes the rest more coarsely; same decoder (default: off)",
    )
    p.add_argument(
        "--roi-interval",
        type=positive_int,
        default=RoiSettings.interval,
        help="with --roi: run the face detector every N frames",
    )
    p.add_argument(
        "--roi-boost",
        type=non_negative_int,
        default=SenderConfig.roi_boost,
        help="with --roi and a fixed level: code this many levels higher (about the same "
        "rate as uniform coding; with --rate-kbps the rate controller decides)",
    )
    p.add_argument(
        "--drop-slices",
        type=probability,
        default=0.0,
        help="simulate loss: send each slice with a broken CRC-32 with this probability",
    )
    p.add_argument("--device", type=device_name, default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, default=0, help="PyTorch threads (0 = half the cores)")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="transforms' dtype (auto = bf16 on CPUs with native bf16, else fp32)",
    )
    p.add_argument(
        "--fps", type=positive_float, default=None, help="pace at this rate (default: source's)"
    )
    p.add_argument("--frames", type=positive_int, default=None, help="stop after this many frames")
    p.add_argument(
        "--duration", type=positive_float, default=None, help="stop after this many seconds"
    )
    p.add_argument("--loop", action="store_true", help="restart files and folders at their end")
    p.add_argument("--size", type=parse_size, default=None, help="resize frames to WxH")
    p.add_argument(
        "--no-reference",
        dest="reference",
        action="store_false",
        help="never send lossless originals (receivers then report no PSNR)",
    )
    p.add_argument(
        "--secure",
        action="store_true",
        help="CURVE-encrypted stream, only for receivers whose public key is in --allow",
    )
    p.add_argument("--key", default="keys/sender.key_secret", help="the sender's secret key file")
    p.add_argument(
        "--allow", default="keys/allowed", help="folder of admitted receivers' public keys"
    )
    p.add_argument(
        "--feedback",
        type=feedback_option,
        default="auto",
        help="address for receivers' reports: auto (the --bind port + 1), off, or tcp://...",
    )
    p.add_argument("--stream-id", type=stream_id, default="cam0", help="name of this stream")
    p.add_argument(
        "--warmup", type=non_negative_float, default=0.5, help="seconds before the first frame"
    )
    p.add_argument("--stats-json", default=None, help="write the summary here")
    p.add_argument("--quiet", action="store_true", help="no per-second lines")
    p.add_argument("--dashboard", action="store_true", help="live terminal table instead of lines")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = SenderConfig(**vars(args))
    try:
        run_sender(config)
    except (SourceError, ModelFileError, ValueError, OSError) as error:
        print(f"sender: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before streaming began (loading, warm-up, opening a camera)
        print("sender: interrupted before streaming began", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
