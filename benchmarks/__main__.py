"""``python -m benchmarks rd --images DIR --out OUT``; ``python -m benchmarks speed --out OUT``;
``python -m benchmarks denoise --images DIR --out OUT``."""

from __future__ import annotations

import sys

from shared.cli import ArgumentParser
from shared.codec import PRECISIONS
from shared.registry import DEFAULT_MODEL, DENOISE_MODEL


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m benchmarks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    rd = commands.add_parser("rd", help="rate-distortion on an image folder (e.g. Kodak)")
    rd.add_argument("--images", required=True, help="folder of PNG images")
    rd.add_argument("--out", required=True, help="output folder")
    rd.add_argument("--models", nargs="*", default=None, help="zoo names or model files")
    rd.add_argument(
        "--classic", nargs="*", default=None, help="subset of jpeg webp avif x264-intra"
    )
    rd.add_argument("--limit", type=int, default=None, help="use only the first N images")
    rd.add_argument("--reference-rd", default=None, help="folder of published RD curves")
    rd.add_argument("--threads", type=int, default=0, help="PyTorch threads (0 = default)")
    speed = commands.add_parser("speed", help="per-stage speed vs x264, JPEG and CompressAI")
    speed.add_argument("--out", required=True, help="output folder")
    speed.add_argument("--videos", default=None, help="folder with webcam_* and *720p* clips")
    speed.add_argument("--model", default=DEFAULT_MODEL, help="zoo name or model file")
    speed.add_argument("--quality", type=int, default=None, help="level (default: middle)")
    speed.add_argument("--precision", choices=PRECISIONS, default="auto")
    speed.add_argument("--frames", type=int, default=60, help="frames per size")
    denoise = commands.add_parser(
        "denoise", help="noisy images: regular codec vs denoising codec vs NLM + JPEG"
    )
    denoise.add_argument("--images", required=True, help="folder of clean PNG images")
    denoise.add_argument("--out", required=True, help="output folder")
    denoise.add_argument("--sigmas", nargs="+", type=float, default=[0.05, 0.1])
    denoise.add_argument("--regular", default=DEFAULT_MODEL, help="(a): zoo name or model file")
    denoise.add_argument("--denoise-model", default=DENOISE_MODEL, help="(b): zoo name or file")
    denoise.add_argument("--limit", type=int, default=None, help="use only the first N images")
    denoise.add_argument("--threads", type=int, default=0, help="PyTorch threads (0 = default)")
    denoise.add_argument(
        "--tune-nlm-on",
        default=None,
        help="first choose NLM's strength per sigma on this folder (training images, never "
        "the evaluation images)",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "speed":
            from .speed import run_speed

            run_speed(args.out, args.videos, args.model, args.quality, args.precision, args.frames)
            return 0
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        if args.command == "denoise":
            from .denoise import run_denoise, tune_nlm, tuning_images

            factors = None
            if args.tune_nlm_on:
                factors = tune_nlm(tuning_images(args.tune_nlm_on), args.sigmas)
            run_denoise(
                args.images,
                args.out,
                args.sigmas,
                args.regular,
                args.denoise_model,
                args.limit,
                factors,
            )
            return 0
        from .rd import run_rd

        run_rd(args.images, args.out, args.models, args.classic, args.limit, args.reference_rd)
    except (FileNotFoundError, ValueError, KeyError) as error:
        print(f"benchmarks: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
