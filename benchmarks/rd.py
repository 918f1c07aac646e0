"""Kodak-style rate-distortion benchmark: our zoo models beside OpenCV JPEG, WebP and AVIF
and H.264 intra (PyAV libx264).

Every point comes from a real bitstream that is decoded again: our bits are the full wire
message of the frame (msgpack header, model hash, CRC and payload), the classic codecs' bits
are their complete files (H.264: all packets of a one-frame stream). PSNR is over RGB with
peak 255 and MS-SSIM over RGB (pytorch-msssim), both averaged over images.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from shared import wire
from shared.codec import CompressedFrame, ImageCodec
from shared.metrics import bits_per_pixel, psnr
from shared.registry import ZOO

from .bd import bd_rate

JPEG_QUALITIES = (5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95)
WEBP_QUALITIES = (1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
AVIF_QUALITIES = (10, 20, 30, 40, 50, 60, 70, 80, 90)


X264_CRFS = (51, 46, 42, 38, 34, 30, 26, 22, 18)


@dataclass
class Point:
    bpp: float
    psnr: float
    ms_ssim: float | None
    encode_ms: float
    decode_ms: float
    coding_overhead_pct: float | None = None  # ours: real payload bits vs sum(-log2 p)
    nonzero_fraction: float | None = None  # ours: share of quantized latents that are not 0


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float | None:
    """MS-SSIM over RGB (5 scales) or ``None`` for images below 161 pixels a side."""
    if min(a.shape[:2]) < 161:
        return None
    import torch
    from pytorch_msssim import ms_ssim as msssim

    def tensor(x):
        return torch.from_numpy(x).permute(2, 0, 1).unsqueeze(0).float()

    return float(msssim(tensor(a), tensor(b), data_range=255))


def _opencv_codec(ext: str, params: Callable[[int], list[int]]):
    def run(rgb: np.ndarray, quality: int) -> tuple[np.ndarray, int, float, float, dict]:
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        start = time.perf_counter()
        ok, data = cv2.imencode(ext, bgr, params(quality))
        middle = time.perf_counter()
        if not ok:
            raise RuntimeError(f"OpenCV could not encode {ext}")
        decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
        end = time.perf_counter()
        rgb_out = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
        return rgb_out, len(data), middle - start, end - middle, {}

    return run


def _x264_intra(rgb: np.ndarray, crf: int) -> tuple[np.ndarray, int, float, float, dict]:
    """One frame through libx264 (yuv420p, preset medium) and back through FFmpeg's decoder."""
    from fractions import Fraction

    import av

    height, width = rgb.shape[:2]
    padded = np.pad(rgb, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    start = time.perf_counter()
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height = padded.shape[1], padded.shape[0]
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, 25)
    encoder.options = {"crf": str(crf), "preset": "medium"}
    frame = av.VideoFrame.from_ndarray(padded, format="rgb24").reformat(format="yuv420p")
    packets = list(encoder.encode(frame)) + list(encoder.encode(None))
    middle = time.perf_counter()
    size = sum(packet.size for packet in packets)
    decoder = av.CodecContext.create("h264", "r")
    frames = []
    for packet in packets:
        frames.extend(decoder.decode(packet))
    frames.extend(decoder.decode(None))
    decoded = frames[0].to_ndarray(format="rgb24")[:height, :width]
    end = time.perf_counter()
    return decoded, size, middle - start, end - middle, {}


CLASSIC = {
    "jpeg": (
        JPEG_QUALITIES,
        _opencv_codec(
            ".jpg",
            lambda q: [
                cv2.IMWRITE_JPEG_QUALITY,
                q,
                cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
            ],
        ),
    ),
    "webp": (WEBP_QUALITIES, _opencv_codec(".webp", lambda q: [cv2.IMWRITE_WEBP_QUALITY, q])),
    "avif": (AVIF_QUALITIES, _opencv_codec(".avif", lambda q: [cv2.IMWRITE_AVIF_QUALITY, q])),
    "x264-intra": (X264_CRFS, _x264_intra),
}


def _ours(codec: ImageCodec):
    def run(rgb: np.ndarray, level: int) -> tuple[np.ndarray, int, float, float, dict]:
        start = time.perf_counter()
        coded = codec.compress(rgb, level, "rgb")
        message = wire.encode_frame(
            wire.FrameMessage(
                "bench", 0, 0, coded.width, coded.height, codec.model_hash, level, coded.payload
            )
        )
        middle = time.perf_counter()
        parsed = wire.decode(message)
        decoded = codec.decompress(
            CompressedFrame(parsed.payload, parsed.height, parsed.width, parsed.level)
        )
        end = time.perf_counter()
        size = sum(len(part) for part in message)
        # Outside the timed span: the ideal size of the same latents, for the overhead.
        analysis = codec.analyze_all(rgb, level)
        information = codec.information_bits(analysis, level)
        latents = analysis.y
        extra = {
            "payload_bits": 8 * len(coded.payload),
            "information_bits": information,
            "nonzero": int((latents != 0).sum()),
            "latents": latents.size,
        }
        return decoded, size, middle - start, end - middle, extra

    return run


def evaluate(images: list[np.ndarray], run, quality) -> Point:
    bpp, quality_db, similarity, enc, dec = [], [], [], [], []
    payload_bits = information_bits = 0.0
    nonzero = count = 0
    for rgb in images:
        decoded, size, encode_s, decode_s, extra = run(rgb, quality)
        bpp.append(bits_per_pixel(size, rgb.shape[0], rgb.shape[1]))
        quality_db.append(psnr(rgb, decoded))
        similarity.append(ms_ssim(rgb, decoded))
        enc.append(encode_s * 1000)
        dec.append(decode_s * 1000)
        payload_bits += extra.get("payload_bits", 0)
        information_bits += extra.get("information_bits", 0)
        nonzero += extra.get("nonzero", 0)
        count += extra.get("latents", 0)
    overhead = None
    if information_bits:
        overhead = 100 * (payload_bits - information_bits) / information_bits
    valid = [x for x in similarity if x is not None]
    return Point(
        bpp=statistics.fmean(bpp),
        psnr=statistics.fmean(quality_db),
        ms_ssim=statistics.fmean(valid) if len(valid) == len(similarity) else None,
        encode_ms=statistics.median(enc),
        decode_ms=statistics.median(dec),
        coding_overhead_pct=overhead,
        nonzero_fraction=nonzero / count if count else None,
    )


def load_images(folder: Path, limit: int | None) -> list[np.ndarray]:
    """The RGB images of ``folder`` (the first ``limit`` by name); ``ValueError`` naming the
    first file that does not decode."""
    if not folder.exists():
        raise FileNotFoundError(f"no folder {folder}")
    if not folder.is_dir():
        raise ValueError(f"{folder} is a file, not a folder of images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".png", ".jpg", ".ppm"})
    if not files:
        raise FileNotFoundError(f"no images in {folder}")
    if limit is not None:
        if limit < 1:
            raise ValueError(f"--limit must be >= 1, not {limit}")
        files = files[:limit]
    images = []
    for path in files:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot read image {path} (damaged, or not an image)")
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return images


def run_rd(
    images_dir: str,
    out_dir: str,
    models: list[str] | None = None,
    classic: list[str] | None = None,
    limit: int | None = None,
    reference_dir: str | None = None,
) -> dict:
    """Run the benchmark; writes ``rd.json``, ``bd_rate.json`` and ``rd.png`` in ``out_dir``.

    Codec names, models, images and reference curves are all checked before the first
    point is measured."""
    classic = list(CLASSIC) if classic is None else classic
    unknown = [name for name in classic if name not in CLASSIC]
    if unknown:
        raise ValueError(f"unknown --classic {unknown[0]!r}; choose from {', '.join(CLASSIC)}")
    if reference_dir is not None:
        if not Path(reference_dir).is_dir():
            raise FileNotFoundError(f"--reference-rd {reference_dir}: no such folder")
        if not load_reference_curves(Path(reference_dir)):
            raise FileNotFoundError(
                f"--reference-rd {reference_dir}: no published curves (kodak-compressai/*.json)"
            )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = load_images(Path(images_dir), limit)
    codecs = {
        name: ImageCodec.load(name, "cpu") for name in (list(ZOO) if models is None else models)
    }
    results: dict[str, list[dict]] = {}
    for name, codec in codecs.items():
        name = name if name in ZOO else Path(name).stem
        results[name] = [
            {"quality": level} | evaluate(images, _ours(codec), level).__dict__
            for level in range(codec.levels)
        ]
        print(
            f"{name}: " + "  ".join(f"{p['bpp']:.3f}/{p['psnr']:.2f}" for p in results[name]),
            flush=True,
        )
    for name in classic:
        qualities, run = CLASSIC[name]
        results[name] = [{"quality": q} | evaluate(images, run, q).__dict__ for q in qualities]
        print(
            f"{name}: " + "  ".join(f"{p['bpp']:.3f}/{p['psnr']:.2f}" for p in results[name]),
            flush=True,
        )

    bd = {}
    for anchor in ("jpeg", "webp"):
        if anchor not in results:
            continue
        ref = results[anchor]
        bd[f"vs_{anchor}"] = {
            name: bd_rate(
                [p["bpp"] for p in ref],
                [p["psnr"] for p in ref],
                [p["bpp"] for p in pts],
                [p["psnr"] for p in pts],
            )
            for name, pts in results.items()
            if name != anchor
        }
    report = {"images": images_dir, "count": len(images), "codecs": results}
    (out / "rd.json").write_text(json.dumps(report, indent=2))
    (out / "bd_rate.json").write_text(json.dumps(bd, indent=2))
    plot_rd(results, out / "rd.png", reference_dir)
    print_table(results, bd)
    return {"rd": report, "bd_rate": bd}


def print_table(results: dict, bd: dict) -> None:
    print(f"{'codec':<12}{'points':>7}{'bpp range':>16}{'BD vs JPEG':>12}{'BD vs WebP':>12}")
    for name, pts in results.items():
        lo, hi = min(p["bpp"] for p in pts), max(p["bpp"] for p in pts)
        cells = []
        for anchor in ("vs_jpeg", "vs_webp"):
            value = bd.get(anchor, {}).get(name)
            cells.append("-" if value is None else f"{value:+.1f}%")
        print(f"{name:<12}{len(pts):>7}{lo:>8.3f}-{hi:<7.3f}{cells[0]:>12}{cells[1]:>12}")


def load_reference_curves(folder: Path) -> dict[str, tuple[list[float], list[float]]]:
    curves = {}
    for path in sorted((folder / "kodak-compressai").glob("*.json")):
        data = json.loads(path.read_text())
        res = data.get("results", {})
        if "bpp" in res and "psnr-rgb" in res:
            curves[data.get("name", path.stem)] = (res["bpp"], res["psnr-rgb"])
    return curves


def plot_rd(results: dict, path: Path, reference_dir: str | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 6))
    if reference_dir:
        for name, (bpp, db) in load_reference_curves(Path(reference_dir)).items():
            ax.plot(bpp, db, "--", lw=0.9, alpha=0.6, label=f"{name} (published)")
    for name, pts in results.items():
        ax.plot([p["bpp"] for p in pts], [p["psnr"] for p in pts], "o-", ms=3, label=name)
    ax.set_xlim(0, 2.0)
    ax.set_ylim(20, 42)
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel("PSNR RGB (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
