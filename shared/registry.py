"""Names of architectures and of the model files shipped in ``shared/zoo``."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from .models.dense import DenseConfig, DenseModel
from .models.factorized import FactorizedConfig, FactorizedModel
from .models.hyperprior import HyperpriorConfig, HyperpriorModel
from .models.realtime import RealtimeConfig, RealtimeModel
from .models.sparse import SparseConfig, SparseModel

ZOO_DIR = Path(__file__).resolve().parent / "zoo"

#: architecture name -> (model class, config dataclass)
ARCHITECTURES: dict[str, tuple[type[nn.Module], type]] = {
    "factorized": (FactorizedModel, FactorizedConfig),
    "dense": (DenseModel, DenseConfig),
    "sparse": (SparseModel, SparseConfig),
    "realtime": (RealtimeModel, RealtimeConfig),
    "hyperprior": (HyperpriorModel, HyperpriorConfig),
}

#: shipped model name -> (file in ``ZOO_DIR``, its pinned content SHA-256). The pin makes a
#: replaced zoo file fail even when its own embedded hash was recomputed to match.
ZOO: dict[str, tuple[str, str]] = {
    "fast": (
        "fast.safetensors",
        "19d865612bebcb4183d642b772bc130f765556137ba103436219fe5edb073366",  # pin:fast
    ),
    "dense": (
        "dense.safetensors",
        "985f25ea4c7ce49ae2697e3d10602fdb1d9d8f730dbaedbbb31ff7ae712f41dd",  # pin:dense
    ),
    "realtime": (
        "realtime.safetensors",
        "bf356ca6c9e3154a459f0bd554fd634c1fd254de5c73d57eb3392260cc0ff56d",  # pin:realtime
    ),
    "sparse": (
        "sparse.safetensors",
        "689c5abedd30a1a62e90603f61a8343d50d4b0dca3e8cb5b609d47851589e7d3",  # pin:sparse
    ),
    "hyperprior": (
        "hyperprior.safetensors",
        "3e0586a95ec288c70f417b606ea49ac25718cdd7dfa7e9af42317980112574a9",  # pin:hyperprior
    ),
    "denoise": (
        "denoise.safetensors",
        "6d446ad90e29a0a9bbca87bcf057c326b3225da804d32a8537b3b6457bf3eae8",  # pin:denoise
    ),
    "denoise-strong": (
        "denoise-strong.safetensors",
        "985d36b4f6ceb94b1a9daf3b4ea747c8d0a99730fd30ad13a074d04a474bd640",  # pin:denoise-strong
    ),
    "realtime-lite": (
        "realtime-lite.safetensors",
        "01b2a31c1654228b11826fff5b123e6c0d2ad6aa1d2d1448f505b670020400fb",  # pin:realtime-lite
    ),
    "denoise-realtime": (
        "denoise-realtime.safetensors",
        "f5a8f3494c60e5132a13b2c700b7379ec32bf9e495c00ccf071b5651863d410a",  # pin:denoise-realtime
    ),
}

DEFAULT_MODEL = "realtime"  # best per bit on Kodak since the prior tiles, and real time
#: The default model narrowed to half the transforms' work, for CPUs that compute in float32
#: only (no native bfloat16), where ``DEFAULT_MODEL`` does not reach 30 fps on one core.
LITE_MODEL = "realtime-lite"
#: The zoo model the sender's ``--denoise`` selects (for mild noise, sigma up to 0.12 of the
#: range in training): it codes noisy frames as clean ones.
DENOISE_MODEL = "denoise"
#: ``DENOISE_MODEL`` trained on strong noise only (sigma 0.08-0.12 of the range): what
#: ``--denoise`` switches to when the frames' noise reads as strong (``shared.noise``).
STRONG_DENOISE_MODEL = "denoise-strong"
#: The denoising zoo model with the default model's speed (it denoises less).
REALTIME_DENOISE_MODEL = "denoise-realtime"
#: Every denoising zoo model (``--denoise`` accepts ``--model`` naming one of them).
DENOISE_MODELS = (DENOISE_MODEL, STRONG_DENOISE_MODEL, REALTIME_DENOISE_MODEL)


def faster_model(name: str) -> str | None:
    """The zoo model to suggest when ``name`` is too slow on a machine: the real-time
    denoiser for the denoiser, the narrowed default for the default, the default for the
    others; ``None`` for the fastest two, which nothing in the zoo outruns without giving up
    what they do."""
    if name in (DENOISE_MODEL, STRONG_DENOISE_MODEL):
        return REALTIME_DENOISE_MODEL
    if name == DEFAULT_MODEL:
        return LITE_MODEL
    if name in (LITE_MODEL, REALTIME_DENOISE_MODEL):
        return None
    return DEFAULT_MODEL


#: Networks that are not codecs (no entropy tables; not in ``ZOO``, which codec-only code
#: iterates over): name -> (file in ``ZOO_DIR``, pinned content SHA-256).
AUXILIARY: dict[str, tuple[str, str]] = {
    "inpaint": (
        "inpaint.safetensors",
        "04a39eb3c54c87d6e8a321efea2f99e31dfa982ffe811e061fc06e6fa7a28c78",  # pin:inpaint
    ),
    # The same network trained on images alone: python -m receiver.inpaint without --previous.
    "inpaint-image": (
        "inpaint-image.safetensors",
        "1b0cce51209abbb71a21842acadc1c88715eb820d2c50be9334f9b78e208c14e",  # pin:inpaint-image
    ),
}


def build_model(architecture: str, config: dict | None = None) -> nn.Module:
    """A freshly initialised model of ``architecture`` with ``config`` (defaults if None)."""
    if architecture not in ARCHITECTURES:
        raise KeyError(f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}")
    model_class, config_class = ARCHITECTURES[architecture]
    parsed = config_class.from_dict(config) if config else config_class()
    return model_class(parsed)


def resolve_model_path(name_or_path: str) -> tuple[Path, str | None]:
    """The file of a zoo model name and its pinned hash, or ``(Path(name_or_path), None)``."""
    if name_or_path in ZOO:
        filename, pinned = ZOO[name_or_path]
        return ZOO_DIR / filename, pinned
    return Path(name_or_path), None


def resolve_auxiliary_path(name_or_path: str) -> tuple[Path, str | None]:
    """Like ``resolve_model_path`` for ``AUXILIARY`` names (e.g. ``inpaint``)."""
    if name_or_path in AUXILIARY:
        filename, pinned = AUXILIARY[name_or_path]
        return ZOO_DIR / filename, pinned
    return Path(name_or_path), None


def zoo_name_for_hash(short_hash: str) -> str | None:
    """The zoo model whose pinned content hash starts with ``short_hash`` (the 16 hex digits
    a wire message carries), or ``None``."""
    if len(short_hash) != 16:
        return None
    return next((name for name, (_, pin) in ZOO.items() if pin[:16] == short_hash), None)
