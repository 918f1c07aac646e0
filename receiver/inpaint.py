"""``python -m receiver.inpaint --image IN --mask MASK --out OUT``: fill the white pixels of
``MASK`` in ``IN`` with an inpainting network (e.g. to remove overlaid text or fill holes)
and write ``OUT``. ``--previous`` adds an earlier frame of the same scene to copy from.

Two networks ship: ``inpaint-image`` (trained on single images with strokes and text) for
an image alone, and ``inpaint`` (the receiver's concealment network, trained with previous
frames) when ``--previous`` is given; ``--model`` chooses another."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from shared.cli import ArgumentParser, non_negative_int
from shared.memory import keep_freed_memory
from shared.modelfile import ModelFileError
from shared.models.inpaint import Inpainter

MAX_SIDE = 4096
IMAGE_MODEL = "inpaint-image"  # for an image alone
VIDEO_MODEL = "inpaint"  # with a previous frame (the receiver's concealment network)


def default_model(with_previous: bool) -> str:
    """The shipped network for an image alone or with a previous frame."""
    return VIDEO_MODEL if with_previous else IMAGE_MODEL


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m receiver.inpaint", description=__doc__)
    p.add_argument("--image", required=True, help="image to repair (PNG, JPEG, ...)")
    p.add_argument("--mask", required=True, help="same size; white (> 127) = pixels to fill")
    p.add_argument("--out", required=True, help="where to write the result (.png, .jpg, ...)")
    p.add_argument("--previous", default=None, help="optional earlier frame of the same scene")
    p.add_argument(
        "--model",
        default=None,
        help=f"zoo name or inpainting model file (default {IMAGE_MODEL}, or {VIDEO_MODEL} "
        "with --previous)",
    )
    p.add_argument(
        "--grow", type=non_negative_int, default=0, help="grow the mask by this many pixels"
    )
    p.add_argument("--threads", type=int, default=1, help="PyTorch threads")
    return p


def read_image(path: str, what: str, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    if not Path(path).is_file():
        raise ValueError(f"{what} {path} does not exist")
    image = cv2.imread(path, flags)
    if image is None:
        raise ValueError(f"{what} {path} is not an image OpenCV can read")
    if max(image.shape[:2]) > MAX_SIDE:
        raise ValueError(f"{what} {path} is larger than {MAX_SIDE} pixels on a side")
    return image


def inpaint_file(
    image_path: str,
    mask_path: str,
    out: str,
    previous_path: str | None = None,
    model: str | None = None,
    grow: int = 0,
) -> dict:
    """Inpaint ``image_path`` where ``mask_path`` is white (with ``model``, by default
    ``default_model``); returns a short summary."""
    rgb = cv2.cvtColor(read_image(image_path, "image"), cv2.COLOR_BGR2RGB)
    mask = read_image(mask_path, "mask", cv2.IMREAD_GRAYSCALE) > 127
    if mask.shape != rgb.shape[:2]:
        raise ValueError(
            f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
            f"{rgb.shape[1]}x{rgb.shape[0]}"
        )
    if grow > 0:
        grow = min(grow, max(mask.shape))  # beyond that it covers the image all the same
        kernel = np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)
        mask = cv2.dilate(mask.astype(np.uint8), kernel) > 0
    previous = None
    if previous_path is not None:
        previous = cv2.cvtColor(read_image(previous_path, "previous frame"), cv2.COLOR_BGR2RGB)
        if previous.shape != rgb.shape:
            raise ValueError("the previous frame differs in size from the image")
    if not Path(out).parent.is_dir():
        raise ValueError(f"folder {Path(out).parent} does not exist")
    inpainter = Inpainter.load(model or default_model(previous is not None))
    started = time.perf_counter()
    result = inpainter(rgb, mask, previous)
    elapsed_ms = 1000 * (time.perf_counter() - started)
    try:
        written = cv2.imwrite(out, cv2.cvtColor(result, cv2.COLOR_RGB2BGR))
    except cv2.error:
        written = False
    if not written:
        raise ValueError(f"cannot write {out} (is its extension an image format?)")
    return {"hole_pixels": int(mask.sum()), "ms": round(elapsed_ms, 1)}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    keep_freed_memory()
    try:
        summary = inpaint_file(
            args.image, args.mask, args.out, args.previous, args.model, args.grow
        )
    except (ModelFileError, ValueError, OSError) as error:
        print(f"receiver.inpaint: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("receiver.inpaint: interrupted", file=sys.stderr)
        return 130
    print(f"wrote {args.out}: {summary['hole_pixels']} pixels filled in {summary['ms']:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
