"""``python -m benchmarks rd --images DIR --out OUT``."""

from __future__ import annotations

import sys

from shared.cli import ArgumentParser


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
    args = parser.parse_args(argv)
    try:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        from .rd import run_rd

        run_rd(args.images, args.out, args.models, args.classic, args.limit, args.reference_rd)
    except (FileNotFoundError, ValueError, KeyError) as error:
        print(f"benchmarks: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
