"""``python -m benchmarks rd|speed|video|conceal|inpaint-example ...``: thin argparse shell
over the benchmarks."""

from __future__ import annotations

import sys

from shared.cli import ArgumentParser, probability
from shared.codec import PRECISIONS
from shared.registry import DEFAULT_MODEL


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
    video = commands.add_parser("video", help="video RD: intra-only vs inter vs x264")
    video.add_argument("--videos", required=True, help="folder with the test clips")
    video.add_argument("--out", required=True, help="output folder")
    video.add_argument("--model", default="realtime", help="zoo name or model file")
    video.add_argument("--frames", type=int, default=150, help="frames per clip")
    video.add_argument("--keyframe-interval", type=int, default=300, help="for ours and x264")
    video.add_argument("--levels", type=int, nargs="*", default=None, help="default: all")
    video.add_argument("--clips", nargs="*", default=None, help="glob patterns in --videos")
    video.add_argument("--no-x264", dest="x264", action="store_false")
    video.add_argument("--threads", type=int, default=1, help="PyTorch threads")
    conceal = commands.add_parser("conceal", help="lost-slice concealment: inpaint/copy/gray")
    conceal.add_argument("--videos", required=True, help="folder with the test clips")
    conceal.add_argument("--out", required=True, help="output folder")
    conceal.add_argument("--model", default="realtime", help="codec: zoo name or model file")
    conceal.add_argument("--inpaint-model", default="inpaint", help="zoo name or model file")
    conceal.add_argument("--frames", type=int, default=100, help="frames per clip")
    conceal.add_argument("--quality", type=int, default=None, help="level (default: middle)")
    conceal.add_argument("--slice-rows", type=int, default=8, help="latent rows per slice")
    conceal.add_argument(
        "--drop",
        type=probability,
        default=None,
        help="lose each slice with this probability (default: exactly one slice per frame)",
    )
    conceal.add_argument("--clips", nargs="*", default=None, help="glob patterns in --videos")
    conceal.add_argument("--threads", type=int, default=1, help="PyTorch threads")
    example = commands.add_parser("inpaint-example", help="remove a caption by inpainting")
    example.add_argument("--image", required=True, help="image to overlay a caption on")
    example.add_argument("--out", required=True, help="output folder")
    example.add_argument("--text", default="latentcast|inpainting", help="'|' breaks lines")
    example.add_argument("--inpaint-model", default="inpaint", help="zoo name or model file")
    args = parser.parse_args(argv)
    try:
        if args.command == "inpaint-example":
            import torch

            from .inpaint_example import run_example

            torch.set_num_threads(1)

            run_example(args.image, args.out, args.text, args.inpaint_model)
            return 0
        if args.command == "conceal":
            import torch

            from .conceal import DEFAULT_CLIPS as CONCEAL_CLIPS
            from .conceal import run_conceal

            torch.set_num_threads(args.threads)
            run_conceal(
                args.videos,
                args.out,
                args.model,
                args.frames,
                args.quality,
                args.inpaint_model,
                tuple(args.clips) if args.clips else CONCEAL_CLIPS,
                args.slice_rows,
                args.drop,
            )
            return 0
        if args.command == "video":
            import torch

            from .video import DEFAULT_CLIPS, run_video

            torch.set_num_threads(args.threads)
            patterns = tuple(args.clips) if args.clips else DEFAULT_CLIPS
            run_video(
                args.videos,
                args.out,
                args.model,
                args.frames,
                args.keyframe_interval,
                args.levels,
                patterns,
                args.x264,
            )
            return 0
        if args.command == "speed":
            from .speed import run_speed

            run_speed(args.out, args.videos, args.model, args.quality, args.precision, args.frames)
            return 0
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        from .rd import run_rd

        run_rd(args.images, args.out, args.models, args.classic, args.limit, args.reference_rd)
    except (FileNotFoundError, ValueError, KeyError) as error:  # ModelFileError is a ValueError
        print(f"benchmarks: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
