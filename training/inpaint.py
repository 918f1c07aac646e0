"""Training of the inpainting network (``shared.models.inpaint``), resumable.

Each sample is a random crop of a training image with a random hole:

- the *previous frame* is synthesised from the same image, as a camera would see it a
  frame earlier: a small random affine motion (shift, rotation, zoom), sometimes a smooth
  local displacement field (things moving in the scene), a brightness/contrast change and
  sensor noise; for ``no_previous`` of the samples there is none (the offline use);
- with ``codec`` set, for ``codec_share`` of the batches the current and previous crops
  are replaced by that codec's reconstructions at a random quality level (what a receiver
  has), while the target stays the original crop;
- the *mask* is horizontal bands (like lost slices), or free-form strokes, rectangles and
  text (holes and overlaid captions for the offline use).

Loss: mean L1 over the hole plus ``tv_weight`` times the total variation of the composited
output over the hole and its border (as in the course's inpainting exercise), so the fill
is smooth where it has nothing better to go on.
"""

from __future__ import annotations

import json
import math
import os
import platform
import string
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from shared.modelfile import save_weights_file
from shared.models.inpaint import InpaintConfig, InpaintNet, network_input, smooth_fill

from .checks import option, require_at_least, require_file, require_output_folder
from .data import list_images, read_rgb, split_train_validation
from .export import load_checkpoint, model_card

MAX_SHORT_SIDE = 540  # larger photos are scaled down to about video-frame scale
MIN_CROP = 32  # the smallest crop the random masks (``random_mask``) can be drawn in
MASK_KINDS = ("band", "strokes", "rects", "text")


@dataclass
class InpaintTrainConfig:
    data: str
    out: str
    steps: int = 8000
    batch: int = 8
    crop: int = 192
    lr: float = 1e-3
    final_lr: float = 2e-5
    decay_from: float = 0.6  # fraction of ``steps`` after which lr decays (cosine)
    tv_weight: float = 0.02
    no_previous: float = 0.25  # share of samples without a previous frame
    # Hole kinds drawn, equally often; "" = the default mix (bands most with a previous
    # frame, strokes and text most without).
    masks: str = ""
    shift_px: float = 3.0  # standard deviation of the previous frame's global shift
    still: float = 0.15  # share of previous frames without motion (static camera)
    relight: float = 0.08  # brightness gain within 1 +- this (offset: half of it)
    codec: str = ""  # codec (zoo name or file) whose reconstructions the inputs are; "" none
    codec_share: float = 0.8  # share of batches passed through ``codec``
    init_from: str = ""  # start from this checkpoint's (or inpaint model file's) weights
    seed: int = 0
    threads: int = 0  # torch intra-op threads; 0 = PyTorch's default
    checkpoint_every: int = 250
    validate_every: int = 500
    log_every: int = 25
    validation_samples: int = 32

    def __post_init__(self) -> None:
        require_output_folder(self.out)
        require_at_least(self, 1, "steps", "batch")
        require_at_least(self, 1, "checkpoint_every", "validate_every", "log_every")
        require_at_least(self, MIN_CROP, "crop")
        require_at_least(self, 0, "threads", "validation_samples", "final_lr", "tv_weight")
        if not self.lr > 0:
            raise ValueError(f"--lr must be > 0, not {self.lr}")
        for field in ("no_previous", "still", "codec_share"):
            if not 0 <= getattr(self, field) <= 1:
                raise ValueError(f"{option(field)} must be in 0..1, not {getattr(self, field)}")
        require_file(self.init_from, "init_from")
        unknown = set(self.mask_kinds()) - set(MASK_KINDS)
        if unknown:
            raise ValueError(
                f"--masks: unknown kind(s) {', '.join(sorted(unknown))}; choose from "
                f"{', '.join(MASK_KINDS)}, comma-separated"
            )

    def mask_kinds(self) -> tuple[str, ...]:
        return tuple(kind.strip() for kind in self.masks.split(",") if kind.strip())


def learning_rate(config: InpaintTrainConfig, step: int) -> float:
    start = int(config.decay_from * config.steps)
    if step < start:
        return config.lr
    progress = min(1.0, (step - start) / max(1, config.steps - start))
    return config.final_lr + 0.5 * (config.lr - config.final_lr) * (
        1 + math.cos(math.pi * progress)
    )


def load_images(files: list[Path], minimum: int) -> list[np.ndarray]:
    images = []
    for path in files:
        image = read_rgb(path)
        short = min(image.shape[:2])
        if short > MAX_SHORT_SIDE:
            scale = MAX_SHORT_SIDE / short
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        if min(image.shape[:2]) >= minimum:
            images.append(image)
    if not images:
        raise ValueError(f"no training image is at least {minimum}x{minimum} pixels")
    return images


def random_mask(rng: np.random.Generator, size: int, kind: str) -> np.ndarray:
    """``(size, size)`` float32 mask, 1 = hole, of ``kind`` band|strokes|rects|text."""
    mask = np.zeros((size, size), np.uint8)
    if kind == "band":
        for _ in range(rng.integers(1, 3)):
            height = int(rng.integers(size // 12, size // 2 + 1))
            top = int(rng.integers(0, size - height + 1))
            mask[top : top + height] = 1
    elif kind == "strokes":
        for _ in range(rng.integers(1, 5)):
            points = [rng.integers(0, size, 2)]
            for _ in range(rng.integers(2, 7)):
                angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(10, size / 3)
                step = np.array([np.cos(angle), np.sin(angle)]) * length
                points.append(np.clip(points[-1] + step, 0, size - 1).astype(int))
            thickness = int(rng.integers(3, 22))
            cv2.polylines(mask, [np.array(points, np.int32)], False, 1, thickness)
    elif kind == "rects":
        for _ in range(rng.integers(1, 4)):
            h, w = (int(v) for v in rng.integers(size // 16, size // 2, 2))
            top, left = (int(v) for v in rng.integers(0, size - max(h, w), 2))
            mask[top : top + h, left : left + w] = 1
    else:  # text, then grown by a few pixels as a caption's mask would be
        letters = string.ascii_letters + string.digits
        for _ in range(rng.integers(1, 4)):
            text = "".join(rng.choice(list(letters), rng.integers(3, 12)))
            scale = float(rng.uniform(0.5, 2.0))
            origin = (int(rng.integers(-20, size // 2)), int(rng.integers(15, size)))
            font = int(rng.choice([cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX]))
            cv2.putText(mask, text, origin, font, scale, 1, int(rng.integers(1, 5)))
        grow = int(rng.integers(1, 4))
        mask = cv2.dilate(mask, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    return mask.astype(np.float32)


def synthesize_previous(
    rng: np.random.Generator,
    patch: np.ndarray,
    crop: int,
    shift_px: float = 3.0,
    still_share: float = 0.15,
    relight: float = 0.08,
) -> np.ndarray:
    """The previous frame for the centre ``crop`` of ``patch`` (``uint8``, larger by a
    margin): the same view moved a little, re-lit and noisier; float32 in [0, 1]."""
    size = patch.shape[0]
    centre = (size / 2, size / 2)
    angle = rng.normal(0, 1.0) if rng.random() < 0.5 else 0.0
    zoom = 1.0 + (rng.normal(0, 0.015) if rng.random() < 0.5 else 0.0)
    matrix = cv2.getRotationMatrix2D(centre, angle, zoom)
    still = rng.random() < still_share  # a static camera: nothing moves, only noise changes
    if still:
        matrix = cv2.getRotationMatrix2D(centre, 0.0, 1.0)
    else:
        matrix[:, 2] += rng.normal(0, shift_px, 2)
    moved = cv2.warpAffine(
        patch, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    if not still and rng.random() < 0.4:  # smooth local motion, up to a few pixels
        grid = rng.normal(0, rng.uniform(0.5, 3.0), (2, 4, 4)).astype(np.float32)
        flow = [cv2.resize(g, (size, size), interpolation=cv2.INTER_CUBIC) for g in grid]
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
        moved = cv2.remap(
            moved, xs + flow[0], ys + flow[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
    margin = (size - crop) // 2
    previous = moved[margin : margin + crop, margin : margin + crop].astype(np.float32) / 255
    if rng.random() < 0.3:
        previous = cv2.GaussianBlur(previous, (0, 0), rng.uniform(0.3, 1.0))
    if not still:
        gain = rng.uniform(1 - relight, 1 + relight)
        previous = previous * gain + rng.uniform(-relight / 2, relight / 2)
    previous = previous + rng.normal(0, rng.uniform(0.0, 0.02), previous.shape)
    return np.clip(previous, 0.0, 1.0).astype(np.float32)


class InpaintSampler:
    """Batches of ``(input (B, 8, S, S), target (B, 3, S, S), mask (B, 1, S, S))``."""

    MARGIN = 16

    def __init__(
        self,
        images: list[np.ndarray],
        crop: int,
        no_previous: float,
        seed: int,
        motion: tuple[float, float, float] = (3.0, 0.15, 0.08),
        codec=None,
        codec_share: float = 0.0,
        mask_kinds: tuple[str, ...] = (),
    ):
        self.mask_kinds = mask_kinds  # drawn equally often; () = the default mix
        self.images = images
        self.crop = crop
        self.no_previous = no_previous
        self.rng = np.random.default_rng(seed)
        self.motion = motion  # shift_px, still share, relight
        self.codec = codec  # a codec model (``shared.models``) or None
        self.codec_share = codec_share

    def sample(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        rng, crop = self.rng, self.crop
        image = self.images[rng.integers(len(self.images))]
        size = crop + 2 * self.MARGIN
        size = min(size, *image.shape[:2])
        top = rng.integers(image.shape[0] - size + 1)
        left = rng.integers(image.shape[1] - size + 1)
        patch = image[top : top + size, left : left + size]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        patch = np.ascontiguousarray(patch)
        margin = (size - crop) // 2
        current = patch[margin : margin + crop, margin : margin + crop].astype(np.float32) / 255
        with_previous = rng.random() >= self.no_previous
        previous = synthesize_previous(rng, patch, crop, *self.motion) if with_previous else None
        if self.mask_kinds:
            kind = str(rng.choice(self.mask_kinds))
        else:
            weights = (0.6, 0.15, 0.1, 0.15) if with_previous else (0.25, 0.3, 0.15, 0.3)
            kind = str(rng.choice(MASK_KINDS, p=weights))
        mask = random_mask(rng, crop, kind)
        if mask.sum() == 0:
            mask[crop // 3 : crop // 2] = 1
        return current, previous, mask

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` as the codec reconstructs them at a random level (key frames)."""
        level = int(self.rng.integers(self.codec.config.levels))
        return self.codec.synthesize(self.codec.analyze(images, level), level)

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        samples = [self.sample() for _ in range(size)]

        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(array).permute(2, 0, 1)[None]

        targets = torch.cat([tensor(current) for current, _, _ in samples])
        seen = targets
        previous = [None if p is None else tensor(p) for _, p, _ in samples]
        if self.codec is not None and self.rng.random() < self.codec_share:
            given = [i for i, p in enumerate(previous) if p is not None]
            coded = self.reconstruct(torch.cat([targets, *(previous[i] for i in given)]))
            seen = coded[:size]
            for k, i in enumerate(given):
                previous[i] = coded[size + k : size + k + 1]
        masks = torch.cat([torch.from_numpy(m)[None, None] for _, _, m in samples])
        inputs = [
            network_input(seen[i : i + 1], masks[i : i + 1], previous[i]) for i in range(size)
        ]
        return torch.cat(inputs), targets, masks


def loss_terms(
    output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, tv_weight: float
) -> dict[str, torch.Tensor]:
    """L1 over the hole and total variation over the hole grown by one pixel."""
    hole = mask.sum() * 3 + 1e-6
    l1 = ((output - target).abs() * mask).sum() / hole
    grown = torch.nn.functional.max_pool2d(mask, 3, stride=1, padding=1)
    dx = (output[..., :, 1:] - output[..., :, :-1]).abs() * grown[..., :, 1:]
    dy = (output[..., 1:, :] - output[..., :-1, :]).abs() * grown[..., 1:, :]
    tv = (dx.sum() + dy.sum()) / (grown.sum() * 3 + 1e-6)
    return {"loss": l1 + tv_weight * tv, "l1": l1, "tv": tv}


def hole_psnr(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    mse = float((((output - target) ** 2) * mask).sum() / (mask.sum() * 3))
    return 10 * math.log10(1.0 / max(mse, 1e-12))


@torch.no_grad()
def validate(net: InpaintNet, samples: list[tuple]) -> dict:
    """Hole PSNR (against the original crop) of the network, copy-previous, smooth fill and
    gray on fixed ``(target, seen, previous or None, mask)`` samples."""
    net.eval()
    result = {}
    for name, with_previous in (("band_prev", True), ("free_noprev", False)):
        chosen = [s for s in samples if (s[2] is not None) == with_previous]
        rows = {"net": [], "copy": [], "smooth": [], "gray": []}
        for target, x, p, m in chosen:
            rows["net"].append(hole_psnr(net(network_input(x, m, p)), target, m))
            if p is not None:
                rows["copy"].append(hole_psnr(p, target, m))
            else:
                rows["smooth"].append(hole_psnr(smooth_fill(x, 1 - m), target, m))
            rows["gray"].append(hole_psnr(torch.full_like(x, 0.5), target, m))
        result[name] = {k: round(sum(v) / len(v), 3) for k, v in rows.items() if v}
    net.train()
    return result


def validation_samples(
    images: list[np.ndarray], config: InpaintTrainConfig, codec=None
) -> list[tuple]:
    """Fixed ``(target, seen, previous, mask)`` tensors: bands with a previous frame and
    text/strokes without; ``seen`` and ``previous`` are ``codec``'s reconstructions at its
    middle level when a codec is given."""
    motion = (config.shift_px, config.still, config.relight)
    sampler = InpaintSampler(images, config.crop, 0.0, 12345, motion)
    samples = []
    for i in range(config.validation_samples):
        current, previous, _ = sampler.sample()
        if i % 2:
            mask = random_mask(sampler.rng, config.crop, "band")
        else:
            previous = None
            mask = random_mask(sampler.rng, config.crop, ("text", "strokes")[i // 2 % 2])
        target = torch.from_numpy(current).permute(2, 0, 1)[None]
        seen = target
        if previous is not None:
            previous = torch.from_numpy(previous).permute(2, 0, 1)[None]
        if codec is not None:
            level = codec.config.levels // 2
            with torch.no_grad():
                seen = codec.synthesize(codec.analyze(target, level), level)
                if previous is not None:
                    previous = codec.synthesize(codec.analyze(previous, level), level)
        samples.append((target, seen, previous, torch.from_numpy(mask)[None, None]))
    return samples


def initial_weights(path: str) -> dict[str, torch.Tensor]:
    """The network weights of a training checkpoint (.pt) or an inpainting model file."""
    if path.endswith(".safetensors"):
        from shared.modelfile import load_weights_file

        return {k: torch.from_numpy(v) for k, v in load_weights_file(path).weights.items()}
    return load_checkpoint(path, keys=("model",))["model"]


def save_checkpoint(path: Path, net, optimizer, step: int, config, elapsed: float) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": net.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "train_config": asdict(config),
            "architecture": InpaintNet.architecture,
            "model_config": net.config.to_dict(),
            "elapsed_s": elapsed,
        },
        tmp,
    )
    os.replace(tmp, path)  # atomic: a crash mid-save never leaves a broken checkpoint


def train_inpaint(config: InpaintTrainConfig) -> Path:
    """Train (resuming from ``out/checkpoint.pt`` when present); returns the checkpoint."""
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint_path, log_path = out / "checkpoint.pt", out / "log.jsonl"
    codec = None
    if config.codec:
        from shared.codec import ImageCodec

        codec = ImageCodec.load(config.codec, "cpu", "fp32").model
    net = InpaintNet(InpaintConfig())
    if config.init_from and not checkpoint_path.exists():
        try:
            net.load_state_dict(initial_weights(config.init_from))
        except RuntimeError as error:  # names or shapes of another network
            raise ValueError(
                f"--init-from {config.init_from} holds no inpainting network weights"
            ) from error
        print(f"initialised from {config.init_from}", flush=True)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    step, elapsed = 0, 0.0
    if checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path)
        if state["architecture"] != InpaintNet.architecture:
            raise ValueError(
                f"--out {out} holds a checkpoint of a {state['architecture']} codec, not of "
                "the inpainting network: choose another --out"
            )
        net = InpaintNet(InpaintConfig.from_dict(state["model_config"]))
        net.load_state_dict(state["model"])
        optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed = int(state["step"]), float(state["elapsed_s"])
        print(f"resumed from {checkpoint_path} at step {step}", flush=True)
    files, validation_files = split_train_validation(list_images(config.data))
    images = load_images(files, config.crop)
    held_out = validation_samples(load_images(validation_files, config.crop), config, codec)
    # A fresh stream of samples per (re)start, so a resumed run does not repeat itself.
    motion = (config.shift_px, config.still, config.relight)
    sampler = InpaintSampler(
        images,
        config.crop,
        config.no_previous,
        config.seed + step,
        motion,
        codec,
        config.codec_share,
        config.mask_kinds(),
    )
    with log_path.open("a") as log:
        start = {
            "kind": "start",
            "step": step,
            "config": asdict(config),
            "host": platform.node(),
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "train_images": len(images),
        }
        log.write(json.dumps(start) + "\n")
    started = time.time() - elapsed
    window: list[dict] = []
    net.train()
    while step < config.steps:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        inputs, target, mask = sampler.batch(config.batch)
        terms = loss_terms(net(inputs), target, mask, config.tv_weight)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        step += 1
        window.append({k: float(v.detach()) for k, v in terms.items()})
        if step % config.log_every == 0:
            row = {"kind": "train", "step": step, "time_s": round(time.time() - started, 1)}
            row |= {k: sum(r[k] for r in window) / len(window) for k in window[0]}
            row["lr"] = learning_rate(config, step)
            window.clear()
            with log_path.open("a") as log:
                log.write(json.dumps(row) + "\n")
            print(
                f"step {step}/{config.steps} loss {row['loss']:.4f} l1 {row['l1']:.4f} "
                f"tv {row['tv']:.4f}  {row['time_s']:.0f} s",
                flush=True,
            )
        if step % config.checkpoint_every == 0 or step == config.steps:
            save_checkpoint(checkpoint_path, net, optimizer, step, config, time.time() - started)
        if step % config.validate_every == 0 or step == config.steps:
            result = validate(net, held_out)
            with log_path.open("a") as log:
                log.write(json.dumps({"kind": "validation", "step": step} | result) + "\n")
            print(f"validation (hole PSNR dB): {json.dumps(result)}", flush=True)
    return checkpoint_path


def export_inpaint(
    checkpoint: str | Path, out: str | Path, card_path: str | Path | None = None
) -> str:
    """Write the model file ``out`` from ``checkpoint``; returns its content hash."""
    state = load_checkpoint(checkpoint)
    if state["architecture"] != InpaintNet.architecture:
        raise ValueError(
            f"{checkpoint} is a checkpoint of a {state['architecture']} codec: use "
            "python -m training export"
        )
    net = InpaintNet(InpaintConfig.from_dict(state["model_config"]))
    net.load_state_dict(state["model"])
    weights = {k: v.detach().float().numpy() for k, v in net.state_dict().items()}
    card = model_card(state, card_path)
    return save_weights_file(out, InpaintNet.architecture, net.config.to_dict(), weights, card)
