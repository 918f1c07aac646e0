"""``python -m receiver``: subscribe to a sender, decode and report (argparse shell over
``receiver.app.run_receiver``)."""

from __future__ import annotations

import argparse
import signal
import sys

from shared.cli import (
    ArgumentParser,
    device_name,
    feedback_option,
    positive_float,
    positive_int,
    probability,
    zmq_address,
)
from shared.codec import PRECISIONS
from shared.modelfile import ModelFileError
from shared.registry import DEFAULT_MODEL, LITE_MODEL, ZOO

from .app import ReceiverConfig, run_receiver
from .conceal import METHODS
from .display import DisplayUnavailable


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m receiver", description="Receive and decode frames.")
    p.add_argument(
        "--connect", type=zmq_address, default="tcp://127.0.0.1:5555", help="sender's address"
    )
    p.add_argument(
        "--model",
        default=None,
        help=f"zoo model ({', '.join(ZOO)}) or model file path (default {DEFAULT_MODEL}, or "
        f"{LITE_MODEL} where the CPU computes in float32 only)",
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
        "--no-psnr",
        dest="psnr",
        action="store_false",
        help="do not ask for the lossless originals (saves bandwidth; no PSNR)",
    )
    p.add_argument("--frames", type=positive_int, default=None, help="stop after this many frames")
    p.add_argument(
        "--duration", type=positive_float, default=None, help="stop after this many seconds"
    )
    p.add_argument(
        "--idle-timeout",
        type=positive_float,
        default=None,
        help="stop after this many seconds without any message",
    )
    p.add_argument("--keep-running", action="store_true", help="ignore end-of-stream messages")
    p.add_argument(
        "--decode-all",
        action="store_true",
        help="decode every frame even when falling behind (latency may grow)",
    )
    p.add_argument(
        "--feedback",
        type=feedback_option,
        default="auto",
        help="where to send reports: auto (the --connect port + 1), off, or tcp://...",
    )
    p.add_argument("--dashboard", action="store_true", help="live terminal table instead of lines")
    p.add_argument(
        "--show",
        action="store_true",
        help="open a window with the video and kbps/PSNR/fps/latency (q or Esc closes)",
    )
    p.add_argument("--record", default=None, help="save the received video to this .mp4 file")
    p.add_argument(
        "--show-code",
        action="store_true",
        help="--show/--record show the code (latent map, zeros black) beside the reconstruction",
    )
    p.add_argument(
        "--secure",
        action="store_true",
        help="CURVE-encrypted, authenticated stream (needs --key and --server-key)",
    )
    p.add_argument(
        "--key", default="keys/receiver.key_secret", help="this receiver's secret key file"
    )
    p.add_argument("--server-key", default="keys/sender.key", help="the sender's public key file")
    p.add_argument(
        "--out",
        default=None,
        help="folder for summary.json, frames.jsonl and images (timeline.png, side_by_side.png, "
        "strip.png: original | code | reconstruction)",
    )
    p.add_argument("--quiet", action="store_true", help="no per-second lines")
    p.add_argument(
        "--conceal",
        choices=METHODS,
        default="inpaint",
        help="fill damaged slices by inpainting (copy when the model is missing), the "
        "previous picture shifted by the camera motion, the previous picture, or gray",
    )
    p.add_argument(
        "--inpaint-model",
        default=None,
        help="zoo name or file of the inpainting network (default: the bundled one; one "
        "named here must load)",
    )
    p.add_argument(
        "--drop-slices",
        type=probability,
        default=0.0,
        help="simulate loss: treat each slice as missing with this probability",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = run_receiver(ReceiverConfig(**vars(args)))
    except (ModelFileError, ValueError, OSError, DisplayUnavailable) as error:
        print(f"receiver: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before receiving began (loading the model, connecting)
        print("receiver: interrupted before receiving began", file=sys.stderr)
        return 130
    # For scripts: --idle-timeout ran out before a single frame decoded.
    return 1 if summary["idle_timeout_without_frames"] else 0


if __name__ == "__main__":
    code = main()
    # run_receiver handles SIGINT until its records are written; one arriving while the
    # interpreter shuts down (the stream benchmark's stop, a second Ctrl-C) changes nothing.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)
