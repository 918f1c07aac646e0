"""Rate-distortion training of a zoo architecture, resumable, single- or multi-process.

Loss per step, for a quality level ``k`` drawn at random:
``bits_per_pixel + lambdas[k] * 255**2 * MSE`` with the image in ``[0, 1]``.

Denoising (``noise_sigma > 0``): the model's input is the crop plus Gaussian noise (and,
with ``input_dropout``, some pixels zeroed), while the MSE is against the clean crop, so
the codec learns to spend no bits on noise (``corrupt``).

Run under ``torchrun --nproc-per-node N`` for data-parallel training with
``DistributedDataParallel`` (gloo on CPU, nccl on CUDA); every process draws its own crops
and rank 0 writes checkpoints, logs and plots.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from shared.registry import ARCHITECTURES, build_model

from .checks import option, require_at_least, require_file, require_output_folder
from .data import CropSampler, center_crops, list_images, split_train_validation
from .export import load_checkpoint

DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    data: str
    out: str
    architecture: str = "factorized"
    model_config: str = "{}"  # JSON overrides of the architecture's config dataclass
    steps: int = 20000
    batch: int = 8
    crop: int = 128
    lr: float = 1e-3
    final_lr: float = 1e-5
    decay_from: float = 0.75  # fraction of ``steps`` after which lr decays (cosine) to final_lr
    seed: int = 0
    threads: int = 0  # torch intra-op threads per process; 0 = PyTorch's default
    device: str = "auto"
    checkpoint_every: int = 250
    validate_every: int = 1000
    log_every: int = 25
    validation_crop: int = 256
    # Start from the weights of this checkpoint (.pt) or model file (.safetensors) wherever
    # names and shapes match (e.g. a hyperprior from a trained factorized model).
    init_from: str = ""
    # Denoising: Gaussian noise on the input with a per-image sigma drawn uniformly from
    # [noise_sigma_min, noise_sigma] (image range [0, 1]; from 0, one model serves clean to
    # noisy frames); the distortion is measured against the clean crop.
    noise_sigma: float = 0.0
    noise_sigma_min: float = 0.0
    input_dropout: float = 0.0  # share of input pixels set to 0 (all channels), if any

    def __post_init__(self) -> None:
        require_output_folder(self.out)
        if self.architecture not in ARCHITECTURES:
            known = ", ".join(sorted(ARCHITECTURES))
            raise ValueError(f"--architecture must be one of {known}, not {self.architecture!r}")
        try:
            overrides = json.loads(self.model_config)
        except json.JSONDecodeError as error:
            raise ValueError(f"--model-config is not valid JSON ({error})") from error
        if not isinstance(overrides, dict):
            raise ValueError("--model-config must be a JSON object, e.g. '{\"hidden\": 64}'")
        require_at_least(self, 1, "steps", "batch", "crop", "validation_crop")
        require_at_least(self, 1, "checkpoint_every", "validate_every", "log_every")
        require_at_least(
            self, 0, "threads", "final_lr", "noise_sigma", "noise_sigma_min", "input_dropout"
        )
        if self.noise_sigma_min > self.noise_sigma:
            raise ValueError("--noise-sigma-min must not exceed --noise-sigma")
        if not self.lr > 0:
            raise ValueError(f"--lr must be > 0, not {self.lr}")
        if not self.input_dropout < 1:
            raise ValueError(f"--input-dropout must be < 1, not {self.input_dropout}")
        if not 0 <= self.decay_from <= 1:
            raise ValueError(
                f"--decay-from is a fraction of --steps in 0..1, not {self.decay_from}"
            )
        if self.device not in DEVICES:
            raise ValueError(f"--device must be one of {', '.join(DEVICES)}, not {self.device!r}")
        require_file(self.init_from, "init_from")


def learning_rate(config: TrainConfig, step: int) -> float:
    start = int(config.decay_from * config.steps)
    if step < start:
        return config.lr
    progress = min(1.0, (step - start) / max(1, config.steps - start))
    return config.final_lr + 0.5 * (config.lr - config.final_lr) * (
        1 + math.cos(math.pi * progress)
    )


def rd_terms(output: dict, image: torch.Tensor, lam: float) -> dict[str, torch.Tensor]:
    pixels = image.shape[0] * image.shape[2] * image.shape[3]
    likelihoods = output["likelihoods"]  # a tensor, or a list (e.g. latents, hyper-latents)
    if isinstance(likelihoods, torch.Tensor):
        likelihoods = [likelihoods]
    bpp = sum(-torch.log2(part).sum() for part in likelihoods) / pixels
    mse = torch.mean((output["x_hat"] - image) ** 2)
    loss = bpp + lam * 255**2 * mse
    if "penalty" in output:  # e.g. the sparse model's KL sparsity term
        loss = loss + output["penalty"]
    return {"loss": loss, "bpp": bpp, "mse": mse}


def corrupt(
    image: torch.Tensor,
    noise_sigma: float,
    dropout: float = 0.0,
    generator=None,
    noise_sigma_min: float = 0.0,
) -> torch.Tensor:
    """The input a denoising model sees for a clean batch ``(B, 3, H, W)`` in ``[0, 1]``:
    plus Gaussian noise with a sigma per image drawn uniformly from
    ``[noise_sigma_min, noise_sigma]``,
    clipped to ``[0, 1]``, then with each pixel (all channels) zeroed with probability
    ``dropout``. Returns ``image`` itself when both are 0."""
    out = image
    if noise_sigma > 0:
        spread = noise_sigma - noise_sigma_min
        draw = torch.rand(image.shape[0], 1, 1, 1, generator=generator)
        sigma = noise_sigma_min + spread * draw
        noise = torch.randn(image.shape, generator=generator)
        out = (out + sigma.to(image.device) * noise.to(image.device)).clamp(0.0, 1.0)
    if dropout > 0:
        b, _, h, w = image.shape
        keep = torch.rand(b, 1, h, w, generator=generator) >= dropout
        out = out * keep.to(image.device)
    return out


def psnr_from_mse(mse: float) -> float:
    return 10 * math.log10(1.0 / max(mse, 1e-12))


@torch.no_grad()
def validate(
    model, images: list[torch.Tensor], device: torch.device, inputs: list | None = None
) -> list[dict]:
    """Per level: mean estimated bpp (of rounded latents) and mean PSNR in dB against
    ``images``, coding ``inputs`` (e.g. noisy versions; default the images themselves)."""
    model.eval()
    results = []
    for level in range(model.config.levels):
        bpp, psnr = [], []
        for image, source in zip(images, inputs or images, strict=True):
            image = image.to(device)
            x_hat, bits = model.estimated_bits(source.to(device), level)
            bpp.append(bits / (image.shape[2] * image.shape[3]))
            psnr.append(psnr_from_mse(float(torch.mean((x_hat - image) ** 2))))
        results.append({"level": level, "bpp": sum(bpp) / len(bpp), "psnr": sum(psnr) / len(psnr)})
    model.train()
    return results


def initialize_from(model, path: str) -> int:
    """Copy every tensor of ``path`` whose name and shape match one of ``model``'s; returns
    how many were copied (``ValueError`` when none)."""
    if path.endswith(".safetensors"):
        from shared.modelfile import load_model_file

        source = {k: torch.from_numpy(v) for k, v in load_model_file(path).weights.items()}
    else:
        source = load_checkpoint(path, keys=("model",))["model"]
    own = model.state_dict()
    matched = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    if not matched:
        raise ValueError(f"no tensor of {path} fits the model")
    model.load_state_dict(matched, strict=False)
    return len(matched)


def save_checkpoint(path: Path, model, optimizer, step: int, config: TrainConfig, elapsed: float):
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "train_config": asdict(config),
            "architecture": model.architecture,
            "model_config": model.config.to_dict(),
            "elapsed_s": elapsed,
        },
        tmp,
    )
    os.replace(tmp, path)  # atomic: a crash mid-save never leaves a broken checkpoint


def plot_curves(log_path: Path, png_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    train = [r for r in rows if r["kind"] == "train"]
    if not train:
        return
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    panels = (("loss", "loss"), ("bpp", "bits/pixel"), ("psnr", "PSNR (dB)"))
    for ax, (key, label) in zip(axes, panels, strict=True):
        ax.plot([r["step"] for r in train], [r[key] for r in train], lw=0.8)
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    fig.suptitle(f"training ({log_path.parent.name}); rows mix quality levels")
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)


def train(config: TrainConfig) -> Path:
    """Train (resuming from ``out/checkpoint.pt`` when present); returns the checkpoint path.

    Everything that can be wrong with ``config`` is checked before the images are read."""
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: PyTorch sees no CUDA GPU here")
    distributed = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    use_cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
    if distributed:
        dist.init_process_group("nccl" if use_cuda else "gloo")
    rank = dist.get_rank() if distributed else 0
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed + rank)

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint_path = out / "checkpoint.pt"
    log_path = out / "log.jsonl"

    try:
        model = build_model(config.architecture, json.loads(config.model_config) or None)
    except (TypeError, ValueError) as error:  # keys or values the architecture does not take
        raise ValueError(f"--model-config {config.model_config}: {error}") from error
    model = model.to(device)
    for field in ("crop", "validation_crop"):
        if getattr(config, field) % model.stride:
            raise ValueError(
                f"{option(field)} must be a multiple of {model.stride} for --architecture "
                f"{config.architecture}, not {getattr(config, field)}"
            )
    if config.init_from and not checkpoint_path.exists():
        loaded = initialize_from(model, config.init_from)
        if rank == 0:
            print(f"initialised {loaded} tensors from {config.init_from}", flush=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    step, elapsed = 0, 0.0
    if checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path, map_location=device)
        if state["architecture"] != config.architecture:
            raise ValueError(
                f"--out {out} holds a checkpoint of --architecture {state['architecture']}, "
                f"not {config.architecture}: resume with --architecture "
                f"{state['architecture']} or choose another --out"
            )
        requested = model.config.to_dict()
        differing = sorted(
            key
            for key, value in state["model_config"].items()
            if key in requested and requested[key] != value
        )
        if differing:
            shown = {key: state["model_config"][key] for key in differing}
            raise ValueError(
                f"--out {out} holds a checkpoint with --model-config {json.dumps(shown)}: "
                "resume with that or choose another --out"
            )
        model = build_model(state["architecture"], state["model_config"]).to(device)
        model.load_state_dict(state["model"])
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed = int(state["step"]), float(state["elapsed_s"])
        if rank == 0:
            print(f"resumed from {checkpoint_path} at step {step}", flush=True)

    files, validation_files = split_train_validation(list_images(config.data))
    # Seeded by the step it starts from: a run is reproducible, and a resumed one does not
    # replay the crops it began with.
    sampler = CropSampler(files, config.crop, seed=(config.seed * 1000 + rank) * 1_000_003 + step)
    validation_images = center_crops(validation_files[:8], config.validation_crop)
    # Denoising runs validate on inputs corrupted once, with a fixed seed.
    fixed = torch.Generator().manual_seed(1234)
    validation_inputs = [
        corrupt(image, config.noise_sigma, config.input_dropout, fixed, config.noise_sigma_min)
        for image in validation_images
    ]
    trained = DistributedDataParallel(model) if distributed else model
    if rank == 0:
        meta = {
            "kind": "start",
            "step": step,
            "config": asdict(config),
            "host": platform.node(),
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "world_size": dist.get_world_size() if distributed else 1,
            "device": str(device),
        }
        with log_path.open("a") as log:
            log.write(json.dumps(meta) + "\n")

    levels = model.config.levels
    started = time.time() - elapsed
    window: list[dict] = []
    while step < config.steps:
        # Same level on every rank: derived from the step, not from per-rank randomness.
        level = random.Random(config.seed * 7919 + step).randrange(levels)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        image = sampler.batch(config.batch)
        inputs = corrupt(
            image, config.noise_sigma, config.input_dropout, noise_sigma_min=config.noise_sigma_min
        ).to(device)
        image = image.to(device)
        terms = rd_terms(trained(inputs, level), image, model.config.lambdas[level])
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        window.append({k: float(v.detach()) for k, v in terms.items()} | {"level": level})

        if rank != 0:
            continue
        if step % config.log_every == 0:
            mean = {k: sum(r[k] for r in window) / len(window) for k in ("loss", "bpp", "mse")}
            row = {
                "kind": "train",
                "step": step,
                "time_s": round(time.time() - started, 1),
                "loss": mean["loss"],
                "bpp": mean["bpp"],
                "psnr": psnr_from_mse(mean["mse"]),
                "lr": learning_rate(config, step),
            }
            window.clear()
            with log_path.open("a") as log:
                log.write(json.dumps(row) + "\n")
            print(
                f"step {step}/{config.steps} loss {row['loss']:.3f} bpp {row['bpp']:.3f} "
                f"psnr {row['psnr']:.2f} dB  {row['time_s']:.0f} s",
                flush=True,
            )
        if step % config.checkpoint_every == 0 or step == config.steps:
            save_checkpoint(checkpoint_path, model, optimizer, step, config, time.time() - started)
            plot_curves(log_path, out / "curves.png")
        if step % config.validate_every == 0 or step == config.steps:
            results = validate(model, validation_images, device, validation_inputs)
            with log_path.open("a") as log:
                log.write(
                    json.dumps({"kind": "validation", "step": step, "levels": results}) + "\n"
                )
            print(
                "validation: "
                + "  ".join(
                    f"L{r['level']} {r['bpp']:.3f} bpp {r['psnr']:.2f} dB" for r in results
                ),
                flush=True,
            )
    if distributed:
        dist.destroy_process_group()
    return checkpoint_path
