"""The image codec both ends share: model file -> ``compress`` / ``decompress``.

``compress(frame)`` runs the analysis transform, rounds the latents to integers and
entropy-codes them with the model's frozen tables; ``decompress`` inverts the entropy coding
exactly and runs the synthesis transform. The integers are the bitstream's content, so a
payload decodes to the same latents on every device; only the synthesis output may differ
across devices by floating-point rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .entropy.coder import LatentCoder
from .frames import padded_size, rgb_to_tensor, tensor_to_rgb, to_rgb
from .modelfile import ModelFile, ModelFileError, load_model_file
from .registry import build_model, resolve_model_path


@dataclass(frozen=True)
class CompressedFrame:
    """One coded frame.

    Attributes:
        payload: the entropy-coded latents (bytes; length is a multiple of 4).
        height, width: size of the original frame in pixels.
        level: quality level index used.
    """

    payload: bytes
    height: int
    width: int
    level: int


def select_device(name: str) -> torch.device:
    """``"auto"`` picks CUDA when available, else CPU; ``"cpu"``/``"cuda"`` force one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA GPU is available")
    return torch.device(name)


class ImageCodec:
    """A loaded model: transforms on ``device`` plus the integer entropy coder."""

    def __init__(self, model_file: ModelFile, device: str = "cpu") -> None:
        self.model_file = model_file
        self.device = select_device(device)
        try:
            model = build_model(model_file.architecture, model_file.config)
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"model file describes an unusable model: {error}") from error
        state = {name: torch.from_numpy(value) for name, value in model_file.weights.items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        # The training-time densities are replaced by the frozen tables.
        missing = [name for name in missing if not name.startswith("density.")]
        if missing or unexpected:
            raise ModelFileError(f"model weights do not fit: missing {missing}, extra {unexpected}")
        self.model = model.to(self.device).eval()
        self.coder = LatentCoder(model_file.tables)
        if self.coder.tables.channels != model.config.latent:
            raise ModelFileError("entropy tables do not match the model's latent channels")

    @classmethod
    def load(cls, name_or_path: str, device: str = "cpu") -> ImageCodec:
        """Load a zoo model by name (e.g. ``"fast"``) or a model file by path."""
        path, pinned = resolve_model_path(name_or_path)
        if not Path(path).exists():
            raise ModelFileError(f"model {name_or_path!r} not found (no file {path})")
        model_file = load_model_file(path)
        if pinned is not None and model_file.content_sha256 != pinned:
            raise ModelFileError(
                f"zoo model {name_or_path!r} ({path}) is not the file this release pins "
                f"(hash {model_file.content_sha256[:16]}, expected {pinned[:16]})"
            )
        return cls(model_file, device)

    @property
    def model_hash(self) -> str:
        return self.model_file.short_hash

    @property
    def levels(self) -> int:
        return self.model.config.levels

    @property
    def stride(self) -> int:
        return self.model.stride

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int]:
        padded_h, padded_w = padded_size(height, width, self.stride)
        return self.model.config.latent, padded_h // self.stride, padded_w // self.stride

    def check_level(self, level: int) -> None:
        if not 0 <= level < self.levels:
            raise ValueError(f"quality level {level} outside 0..{self.levels - 1}")

    def analyze(self, rgb: np.ndarray, level: int) -> np.ndarray:
        """Integer latents ``(M, h, w)`` ``int32`` of an ``(H, W, 3)`` ``uint8`` RGB frame."""
        tensor = rgb_to_tensor(rgb, self.stride).to(self.device)
        latents = self.model.analyze(tensor, level)[0]
        return latents.to(torch.int32).cpu().numpy()

    def synthesize(self, latents: np.ndarray, level: int, height: int, width: int) -> np.ndarray:
        tensor = torch.from_numpy(latents.astype(np.float32)).unsqueeze(0).to(self.device)
        return tensor_to_rgb(self.model.synthesize(tensor, level), height, width)

    def compress(self, frame: np.ndarray, level: int, color_order: str = "rgb") -> CompressedFrame:
        """Code one frame (any size up to 4096x4096, gray/RGB/BGR ``uint8``)."""
        self.check_level(level)
        rgb = to_rgb(frame, color_order)
        payload = self.coder.encode(self.analyze(rgb, level), level)
        return CompressedFrame(payload, rgb.shape[0], rgb.shape[1], level)

    def decompress(self, frame: CompressedFrame) -> np.ndarray:
        """``(H, W, 3)`` ``uint8`` RGB reconstruction. Raises ``CorruptPayload`` on bad data."""
        self.check_level(frame.level)
        shape = self.latent_shape(frame.height, frame.width)
        latents = self.coder.decode(frame.payload, frame.level, shape)
        return self.synthesize(latents, frame.level, frame.height, frame.width)
