"""Denoising benchmark: noisy images coded three ways, PSNR against the CLEAN image.

For each noise level sigma (a fraction of the 8-bit range) every image gets Gaussian noise
from a generator seeded by its index (the same noise field, scaled, at every sigma),
rounded and clipped to ``uint8`` like a camera frame. Then:

(a) ``regular``: our regular codec (the model the denoising one was fine-tuned from) codes
    the noisy image, at every level;
(b) ``denoise``: the denoising codec codes the noisy image, at every level, as the sender's
    ``--denoise`` does: with the mild-noise model, or the strong-noise one where the image's
    noise estimate (``shared.noise``) reaches the sender's threshold;
(c) ``nlm+jpeg``: OpenCV's ``fastNlMeansDenoisingColored``, then OpenCV JPEG (4:2:0) at 12
    qualities.

Bits are real: whole wire messages for ours (decoded again, as in ``benchmarks.rd``), whole
JPEG files for (c). PSNR is over RGB against the clean image. (b) is compared with (a) and
(c) by BD-PSNR and by the PSNR difference at each of (b)'s rates: the other curve is
interpolated in log-rate; below its lowest rate, its lowest-rate point (which spends more
bits than (b)) stands in; above its highest rate there is no comparison.

Both of our codecs also code the clean images once: the regular codec's clean curve bounds
what any denoising codec with its transforms could reach, and the denoising codec's shows
what it costs on frames without noise.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from shared.codec import ImageCodec
from shared.metrics import bits_per_pixel, psnr
from shared.noise import NoiseSettings, NoiseWatch
from shared.registry import DEFAULT_MODEL, DENOISE_MODEL, STRONG_DENOISE_MODEL

from .bd import bd_psnr
from .rd import CLASSIC, JPEG_QUALITIES, _ours, load_images

SEED = 2024
TARGET_GAIN_DB = 2.0  # the target for (b) over (a) at equal or fewer bits

# Non-local means: OpenCV's recommended windows (7x7 template, 21x21 search) and a filter
# strength h (luminance) = hColor (chroma) proportional to the noise's standard deviation in
# 8-bit units. The factor was chosen on training images, never on the evaluation images:
# ``python -m benchmarks denoise --tune-nlm-on ../shared/datasets/train ...`` measures it
# (first 8 of every 20th training file, factors NLM_FACTORS) and uses what it finds. Measured
# that way, 0.6 was best at sigma 0.05 (29.01 dB; 0.5: 28.94, 0.8: 28.36, 1.0: 27.21) and at
# sigma 0.1 (25.07 dB; 0.5: 24.82, 0.8: 24.17, 1.0: 23.08), so it is the default.
NLM_TEMPLATE, NLM_SEARCH = 7, 21
NLM_FACTORS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2)
NLM_H_FACTOR = 0.6


def add_noise(rgb: np.ndarray, sigma: float, seed) -> np.ndarray:
    """``rgb`` plus Gaussian noise of ``sigma * 255`` (8-bit units), rounded and clipped."""
    field = np.random.default_rng(seed).standard_normal(rgb.shape)
    return np.clip(np.round(rgb + 255.0 * sigma * field), 0, 255).astype(np.uint8)


def nlm(rgb: np.ndarray, h: float) -> np.ndarray:
    """OpenCV's colour non-local-means denoiser with ``h`` for luminance and chroma."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    out = cv2.fastNlMeansDenoisingColored(bgr, None, h, h, NLM_TEMPLATE, NLM_SEARCH)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


def tuning_images(folder: str, count: int = 8) -> list[np.ndarray]:
    """The first ``count`` of every 20th image under ``folder`` (training's validation
    split), for choosing NLM's strength."""
    from training.data import list_images, read_rgb

    return [read_rgb(path) for path in list_images(folder)[::20][:count]]


def tune_nlm(images: list[np.ndarray], sigmas, factors=NLM_FACTORS) -> dict[float, float]:
    """Per sigma, the factor (h = factor * 255 * sigma) with the best mean PSNR of the
    denoised images against the clean ones."""
    best = {}
    for sigma in sigmas:
        scores = {}
        for factor in factors:
            scores[factor] = statistics.fmean(
                psnr(clean, nlm(add_noise(clean, sigma, [SEED + 1, i]), factor * 255 * sigma))
                for i, clean in enumerate(images)
            )
        best[sigma] = max(scores, key=scores.get)
        print(
            f"NLM tuning sigma {sigma}: "
            + "  ".join(f"{f}: {db:.2f} dB" for f, db in scores.items())
            + f"  -> factor {best[sigma]}",
            flush=True,
        )
    return best


def curve(clean: list[np.ndarray], inputs: list[np.ndarray], run, qualities) -> list[dict]:
    """Mean bpp and PSNR against ``clean`` of coding ``inputs`` at each quality."""
    points = []
    for quality in qualities:
        bpp, db, enc, dec = [], [], [], []
        for target, source in zip(clean, inputs, strict=True):
            decoded, size, encode_s, decode_s, _ = run(source, quality)
            bpp.append(bits_per_pixel(size, target.shape[0], target.shape[1]))
            db.append(psnr(target, decoded))
            enc.append(encode_s * 1000)
            dec.append(decode_s * 1000)
        points.append(
            {
                "quality": quality,
                "bpp": statistics.fmean(bpp),
                "psnr": statistics.fmean(db),
                "encode_ms": statistics.median(enc),
                "decode_ms": statistics.median(dec),
            }
        )
    return points


def noise_choices(inputs: list[np.ndarray], strong: bool) -> tuple[list[float], list[bool]]:
    """Each input's noise estimate (fraction of the range) and whether the sender's
    ``--denoise`` would code it with the strong-noise model, as a stream's first frame is
    decided (a fresh ``NoiseWatch``); never with ``strong`` false (no such model)."""
    watches = [NoiseWatch() for _ in inputs]
    chosen = [watch.observe(rgb) and strong for watch, rgb in zip(watches, inputs, strict=True)]
    return [watch.sigma for watch in watches], chosen


def matched_to_noise(
    mild: ImageCodec, strong: ImageCodec | None, inputs: list[np.ndarray], chosen: list[bool]
):
    """``_ours`` coding each of ``inputs`` with ``strong`` where ``chosen`` says so (see
    ``noise_choices``), with ``mild`` elsewhere."""
    runs = {False: _ours(mild), True: _ours(strong) if strong is not None else None}
    # The inputs stay alive (their ids unique) while the curve is made.
    chosen_by_id = {id(rgb): choice for rgb, choice in zip(inputs, chosen, strict=True)}

    def run(rgb: np.ndarray, level: int):
        return runs[chosen_by_id[id(rgb)]](rgb, level)

    return run


def noise_summary(estimates: list[float], chosen: list[bool]) -> dict:
    """The inputs' noise estimates (fraction of the range) and the share of them (b) coded
    with the strong-noise model."""
    return {
        "estimate_median": statistics.median(estimates),
        "estimate_min": min(estimates),
        "estimate_max": max(estimates),
        "threshold": NoiseSettings().threshold,
        "strong_model_share": statistics.fmean(chosen),
    }


def psnr_at(points: list[dict], bpp: float) -> float | None:
    """The curve's PSNR at ``bpp`` (linear in log-rate); its lowest-rate point below its
    range, ``None`` above it."""
    ordered = sorted(points, key=lambda p: p["bpp"])
    if bpp > ordered[-1]["bpp"]:
        return None
    if bpp <= ordered[0]["bpp"]:
        return ordered[0]["psnr"]
    rates = np.log([p["bpp"] for p in ordered])
    return float(np.interp(np.log(bpp), rates, [p["psnr"] for p in ordered]))


def compare(curves: dict[str, list[dict]], clean_regular: list[dict] | None = None) -> dict:
    """(b) against (a) and (c): per (b) level and by BD-PSNR, with the issue's targets; with
    ``clean_regular``, also the regular codec's PSNR on the clean images at (b)'s rates."""
    ours, regular, classic = curves["denoise"], curves["regular"], curves["nlm+jpeg"]
    matched = []
    for point in ours:
        row = {"level": point["quality"], "bpp": point["bpp"], "denoise": point["psnr"]}
        for name, other in (("regular", regular), ("nlm+jpeg", classic)):
            at = psnr_at(other, point["bpp"])
            row[name] = at
            row[f"gain_vs_{name}"] = None if at is None else point["psnr"] - at
        if clean_regular is not None:
            row["regular_on_clean"] = psnr_at(clean_regular, point["bpp"])
        matched.append(row)

    def bd(other: list[dict]) -> float | None:
        return bd_psnr(
            [p["bpp"] for p in other],
            [p["psnr"] for p in other],
            [p["bpp"] for p in ours],
            [p["psnr"] for p in ours],
        )

    gains_a = [r["gain_vs_regular"] for r in matched if r["gain_vs_regular"] is not None]
    gains_c = [r["gain_vs_nlm+jpeg"] for r in matched if r["gain_vs_nlm+jpeg"] is not None]
    return {
        "matched": matched,
        "bd_psnr_vs_regular": bd(regular),
        "bd_psnr_vs_nlm+jpeg": bd(classic),
        "min_gain_vs_regular": min(gains_a, default=None),
        "min_gain_vs_nlm+jpeg": min(gains_c, default=None),
        # Targets: at every (b) level that has a comparison, >= 2 dB over (a) and above (c).
        "target_vs_regular_met": bool(gains_a) and min(gains_a) >= TARGET_GAIN_DB,
        "target_vs_nlm+jpeg_met": bool(gains_c) and min(gains_c) > 0,
    }


def run_denoise(
    images_dir: str,
    out_dir: str,
    sigmas=(0.05, 0.1),
    regular: str = DEFAULT_MODEL,
    denoise: str = DENOISE_MODEL,
    strong: str | None = STRONG_DENOISE_MODEL,
    limit: int | None = None,
    nlm_factors: dict[float, float] | None = None,
    tune_nlm_on: str | None = None,
) -> dict:
    """Run the benchmark; writes ``denoise.json`` and ``denoise.png`` in ``out_dir``.

    With ``tune_nlm_on`` (a folder), NLM's strength per sigma is first chosen on its images
    (``tune_nlm``), after the images and models are checked. ``strong``: the model (b) uses
    where an image's noise reads as strong (``matched_to_noise``); ``None``: ``denoise``
    throughout."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clean = load_images(Path(images_dir), limit)
    codecs = {
        "regular": ImageCodec.load(regular, "cpu"),
        "denoise": ImageCodec.load(denoise, "cpu"),
    }
    strong_codec = ImageCodec.load(strong, "cpu") if strong is not None else None
    if strong_codec is not None and strong_codec.levels != codecs["denoise"].levels:
        raise ValueError(
            f"the strong-noise model has {strong_codec.levels} levels and the denoising model "
            f"{codecs['denoise'].levels}: (b) needs the same levels from both"
        )
    if tune_nlm_on:
        nlm_factors = tune_nlm(tuning_images(tune_nlm_on), sigmas)
    jpeg = CLASSIC["jpeg"][1]
    report = {
        "images": images_dir,
        "count": len(clean),
        "noise": f"Gaussian, sigma * 255 in 8-bit units, rounded and clipped; seed [{SEED}, i]",
        "codecs": {
            "regular": f"{regular} ({codecs['regular'].model_hash}) on the noisy image",
            "denoise": f"{denoise} ({codecs['denoise'].model_hash}) on the noisy image"
            + (
                f", {strong} ({strong_codec.model_hash}) where its noise estimate is at least "
                f"{NoiseSettings().threshold}"
                if strong_codec is not None
                else ""
            ),
            "nlm+jpeg": "cv2.fastNlMeansDenoisingColored (h = hColor = factor * 255 * sigma, "
            f"template {NLM_TEMPLATE}, search {NLM_SEARCH}) then OpenCV JPEG 4:2:0",
        },
        "clean": {},
        "sigmas": {},
    }

    def curves_of(inputs: list[np.ndarray]) -> tuple[dict[str, list[dict]], dict]:
        """Both of our codecs' curves on ``inputs``, and the inputs' ``noise_summary``."""
        estimates, chosen = noise_choices(inputs, strong_codec is not None)
        runs = {
            "regular": _ours(codecs["regular"]),
            "denoise": matched_to_noise(codecs["denoise"], strong_codec, inputs, chosen),
        }
        curves = {
            name: curve(clean, inputs, runs[name], range(codec.levels))
            for name, codec in codecs.items()
        }
        return curves, noise_summary(estimates, chosen)

    report["clean"], report["clean_noise"] = curves_of(clean)
    for name, points in report["clean"].items():
        print(f"{name} on clean images: " + "  ".join(_point(p) for p in points), flush=True)
    for sigma in sigmas:
        noisy = [add_noise(image, sigma, [SEED, i]) for i, image in enumerate(clean)]
        factor = (nlm_factors or {}).get(sigma, NLM_H_FACTOR)
        h = round(factor * 255 * sigma, 2)
        started = time.perf_counter()
        denoised = [nlm(image, h) for image in noisy]
        nlm_ms = (time.perf_counter() - started) * 1000 / len(noisy)
        curves, noise = curves_of(noisy)
        curves["nlm+jpeg"] = curve(clean, denoised, jpeg, JPEG_QUALITIES)
        report["sigmas"][str(sigma)] = {
            "noisy_psnr": statistics.fmean(psnr(c, n) for c, n in zip(clean, noisy, strict=True)),
            "nlm": {
                "h": h,
                "factor": factor,
                "psnr": statistics.fmean(psnr(c, d) for c, d in zip(clean, denoised, strict=True)),
                "ms_per_image": nlm_ms,
            },
            "noise_estimate": noise,
            "curves": curves,
        } | compare(curves, report["clean"]["regular"])
        print_sigma(sigma, report["sigmas"][str(sigma)])
    (out / "denoise.json").write_text(json.dumps(report, indent=2))
    plot_denoise(report, out / "denoise.png")
    return report


def _point(point: dict) -> str:
    return f"{point['bpp']:.3f}/{point['psnr']:.2f}"


def _db(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def print_sigma(sigma: float, entry: dict) -> None:
    nlm_info, noise = entry["nlm"], entry["noise_estimate"]
    print(
        f"sigma {sigma}: noisy input {entry['noisy_psnr']:.2f} dB; NLM alone (h {nlm_info['h']}) "
        f"{nlm_info['psnr']:.2f} dB; noise read {noise['estimate_median']:.4f} "
        f"({noise['estimate_min']:.4f}-{noise['estimate_max']:.4f}); (b) used the strong-noise "
        f"model on {noise['strong_model_share']:.0%} of the images",
        flush=True,
    )
    for name, points in entry["curves"].items():
        print(f"  {name}: " + "  ".join(_point(p) for p in points))
    print(
        f"  {'level':>5} {'bpp':>7} {'(b)':>7} {'(a)@bpp':>8} {'(c)@bpp':>8} {'b-a':>7} "
        f"{'b-c':>7} {'(a) clean@bpp':>14}"
    )
    for r in entry["matched"]:
        print(
            f"  {r['level']:>5} {r['bpp']:>7.3f} {r['denoise']:>7.2f} {_db(r['regular']):>8} "
            f"{_db(r['nlm+jpeg']):>8} {_db(r['gain_vs_regular'], True):>7} "
            f"{_db(r['gain_vs_nlm+jpeg'], True):>7} {_db(r.get('regular_on_clean')):>14}"
        )
    print(
        f"  BD-PSNR (b) vs (a) {_db(entry['bd_psnr_vs_regular'], True)} dB, "
        f"(b) vs (c) {_db(entry['bd_psnr_vs_nlm+jpeg'], True)} dB; targets: "
        f">= {TARGET_GAIN_DB} dB over (a) {entry['target_vs_regular_met']}, "
        f"above (c) {entry['target_vs_nlm+jpeg_met']}",
        flush=True,
    )


def plot_denoise(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = report["sigmas"]
    fig, axes = plt.subplots(1, len(entries), figsize=(6 * len(entries), 4.8), squeeze=False)
    labels = {
        "regular": "(a) regular codec on noisy",
        "denoise": "(b) denoising codec (--denoise) on noisy",
        "nlm+jpeg": "(c) OpenCV NLM + JPEG",
    }
    for ax, (sigma, entry) in zip(axes[0], entries.items(), strict=True):
        for name, points in entry["curves"].items():
            ax.plot(
                [p["bpp"] for p in points],
                [p["psnr"] for p in points],
                "o-",
                ms=3,
                label=labels[name],
            )
        clean = report.get("clean", {}).get("regular")
        if clean:
            ax.plot(
                [p["bpp"] for p in clean],
                [p["psnr"] for p in clean],
                "--",
                color="C0",
                lw=1,
                label="(a)'s codec on the clean image (reference)",
            )
        ax.axhline(entry["noisy_psnr"], color="gray", ls=":", lw=1, label="noisy input")
        ax.axhline(entry["nlm"]["psnr"], color="gray", ls="--", lw=1, label="NLM alone (no coding)")
        ax.set_xlim(0, 2.0)
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel("PSNR RGB against the clean image (dB)")
        ax.set_title(f"sigma = {sigma} ({float(sigma) * 255:.1f} / 255), {report['count']} images")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
