"""Freeze a training checkpoint into a model file that sender and receiver load."""

from __future__ import annotations

import json
import pickle
import platform
import zipfile
from pathlib import Path

import torch

from shared.codec import TRAINING_ONLY_PREFIXES
from shared.entropy.gaussian import gaussian_tables, scale_table
from shared.entropy.tables import tables_from_cdf
from shared.modelfile import save_model_file
from shared.models.hyperprior import HyperpriorModel
from shared.models.integer import IntegerNetwork
from shared.registry import build_model

SEARCH_RADIUS = 1024
CHECKPOINT_KEYS = ("model", "architecture", "model_config", "step", "elapsed_s", "train_config")


def load_checkpoint(
    path: str | Path, map_location="cpu", keys: tuple[str, ...] = CHECKPOINT_KEYS
) -> dict:
    """The contents of the training checkpoint ``path``; ``ValueError`` (one line) when it
    is a folder, unreadable, or not a checkpoint with ``keys``."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"checkpoint {path} is a folder, not a file")
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (
        OSError,
        EOFError,
        RuntimeError,
        ValueError,
        pickle.UnpicklingError,
        zipfile.BadZipFile,
    ) as error:  # torch.load's many ways to fail on a file that is not a checkpoint
        raise ValueError(
            f"cannot read checkpoint {path}: not a PyTorch checkpoint, or damaged "
            f"({type(error).__name__})"
        ) from error
    if not isinstance(state, dict) or any(key not in state for key in keys):
        if path.suffix == ".safetensors":
            raise ValueError(f"{path} is a model file, not a training checkpoint (.pt)")
        raise ValueError(f"{path} is not a training checkpoint (no {', '.join(keys)})")
    return state


def export(
    checkpoint: str | Path,
    out: str | Path,
    card_path: str | Path | None = None,
    half_weights: bool = False,
) -> str:
    """Write ``out`` from ``checkpoint``; returns the model file's content hash.

    ``half_weights`` stores the transform weights as float16 (half the file; the loader
    widens them to float32). Tables and the integer prior network are exact either way.

    The entropy tables are the model's learned per-level densities, integrated over each
    integer's unit interval and quantized to integer frequencies (``shared.entropy.tables``).
    """
    state = load_checkpoint(checkpoint)
    if state["architecture"] == "inpaint":
        raise ValueError(
            f"{checkpoint} is an inpainting checkpoint: use python -m training inpaint-export"
        )
    card = model_card(state, card_path)  # read before the work: a bad card fails fast
    model = build_model(state["architecture"], state["model_config"])
    model.load_state_dict(state["model"])
    model.eval()
    hyper = isinstance(model, HyperpriorModel)
    # The hyperprior's factorized density is z's: one level, ``hyper`` channels.
    tables = tables_from_cdf(
        lambda level: model.density_cdf(level, SEARCH_RADIUS).numpy(),
        levels=1 if hyper else model.config.levels,
        channels=model.config.hyper if hyper else model.config.latent,
        search_radius=SEARCH_RADIUS,
    )
    extras = {}
    if hyper:
        extras |= IntegerNetwork.from_sequential(model.h_s).to_tensors("integer/h_s/")
        extras |= gaussian_tables(scale_table()).to_tensors("scale_tables/")
    # Training-time parts (densities, the float h_s) are replaced by tables and integers.
    weights = {
        name: tensor.detach().to(torch.float16 if half_weights else torch.float32).numpy()
        for name, tensor in model.state_dict().items()
        if not name.startswith(TRAINING_ONLY_PREFIXES)
    }
    return save_model_file(
        out,
        model.architecture,
        model.config.to_dict(),
        weights,
        tables,
        card,
        extras,
    )


def model_card(state: dict, card_path: str | Path | None = None) -> dict:
    """The card a model file carries: a checkpoint's step, training time (s) and settings,
    the exporting machine, then the fields of the JSON file ``card_path`` (command, data,
    hardware ...), which win."""
    card = {
        "checkpoint_step": int(state["step"]),
        "training_time_s": round(float(state["elapsed_s"]), 1),
        "train_config": state["train_config"],
        "exported_on": platform.node(),
    }
    if card_path:
        try:
            fields = json.loads(Path(card_path).read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"card {card_path} is not valid JSON: {error}") from error
        if not isinstance(fields, dict):
            raise ValueError(f"card {card_path} must hold a JSON object")
        card |= fields
    return card
