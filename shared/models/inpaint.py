"""``inpaint``: a small fully convolutional network that fills holes in a frame.

Input (``B, 8, H, W``, ``H`` and ``W`` multiples of 8): the frame with its hole filled by
the previous frame's pixels, the mask (1 = hole), the previous frame and a flag channel
(1 = a previous frame is given). Without a previous frame, a smooth fill of the hole from
its border (push-pull: averages of the known pixels, coarse to fine) stands in for it. The
network predicts a correction of that filled frame, so "copy the previous frame" (or the
smooth fill) is what it starts from and it learns what to change: brightness, small
motion, and, without a previous frame, texture and edges across the hole. Its output is
composited: known pixels are returned unchanged, hole pixels come from the network.

Layout: three stride-2 4x4 convolutions down to 1/8 resolution, dilated 3x3 residual
convolutions there (dilations 1, 2, 4, 8: a receptive field of about 300 pixels, enough to
bridge a 128-pixel band), and 1x1 convolution + pixel-shuffle steps back up with skip
connections. About 1.6 multiply-add GFLOPs at 640x480; the receiver runs it only on the
rows around a damaged band.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

MULTIPLE = 8  # input sides must be multiples of this (three 2x downsamplings)
INPUT_CHANNELS = 8


@dataclass
class InpaintConfig:
    """``fine``/``middle``/``coarse``: channels at 1/2, 1/4 and 1/8 resolution;
    ``dilations``: one residual dilated 3x3 convolution at 1/8 resolution each."""

    fine: int = 16
    middle: int = 32
    coarse: int = 64
    dilations: tuple[int, ...] = (1, 2, 4, 8)

    def to_dict(self) -> dict:
        return {
            "fine": self.fine,
            "middle": self.middle,
            "coarse": self.coarse,
            "dilations": list(self.dilations),
        }

    @classmethod
    def from_dict(cls, data: dict) -> InpaintConfig:
        known = {"fine", "middle", "coarse", "dilations"}
        if set(data) - known:
            raise ValueError(f"unknown inpaint config keys {sorted(set(data) - known)}")
        values = dict(data)
        if "dilations" in values:
            values["dilations"] = tuple(int(d) for d in values["dilations"])
        return cls(**values)


def _up(in_channels: int, out_channels: int) -> nn.Sequential:
    """A 1x1 convolution to ``4 * out`` channels and a 2x pixel shuffle."""
    return nn.Sequential(nn.Conv2d(in_channels, 4 * out_channels, 1), nn.PixelShuffle(2))


class InpaintNet(nn.Module):
    architecture = "inpaint"

    def __init__(self, config: InpaintConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or InpaintConfig()
        f, m, c = config.fine, config.middle, config.coarse
        self.down1 = nn.Conv2d(INPUT_CHANNELS, f, 4, stride=2, padding=1)
        self.down2 = nn.Conv2d(f, m, 4, stride=2, padding=1)
        self.down3 = nn.Conv2d(m, c, 4, stride=2, padding=1)
        self.context = nn.ModuleList(
            nn.Conv2d(c, c, 3, padding=d, dilation=d) for d in config.dilations
        )
        self.up3 = _up(c, m)
        self.merge2 = nn.Conv2d(m, m, 3, padding=1)
        self.up2 = _up(m, f)
        self.merge1 = nn.Conv2d(f, f, 3, padding=1)
        self.up1 = _up(f, 3)
        # Start as "keep the fill": the previous frame's pixels, or the smooth fill.
        nn.init.zeros_(self.up1[0].weight)
        nn.init.zeros_(self.up1[0].bias)
        offset = torch.tensor([0.5, 0.5, 0.5, 0.0, 0.5, 0.5, 0.5, 0.0]).view(1, 8, 1, 1)
        self.register_buffer("offset", offset, persistent=False)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``(B, 8, H, W)`` network input -> ``(B, 3, H, W)`` composited output in [0, 1]."""
        filled, mask = inputs[:, :3], inputs[:, 3:4]
        x = inputs - self.offset  # centre the pixel channels, keep mask and flag
        d1 = F.relu(self.down1(x))
        d2 = F.relu(self.down2(d1))
        h = F.relu(self.down3(d2))
        for layer in self.context:
            h = h + F.relu(layer(h))
        u2 = F.relu(self.merge2(F.relu(self.up3(h)) + d2))
        u1 = F.relu(self.merge1(F.relu(self.up2(u2)) + d1))
        predicted = (filled + self.up1(u1)).clamp(0.0, 1.0)
        return mask * predicted + (1.0 - mask) * filled


def smooth_fill(image: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """``image`` ``(B, C, H, W)`` with the pixels where ``known`` ``(B, 1, H, W)`` is 0
    replaced by averages of the known pixels around them, coarse to fine (push-pull);
    mid-gray where nothing is known."""
    if bool((known > 0).all()):
        return image
    height, width = image.shape[-2:]
    if height == 1 and width == 1:
        return image * known + 0.5 * (1.0 - known)
    total = F.avg_pool2d(image * known, 2, ceil_mode=True)
    weight = F.avg_pool2d(known, 2, ceil_mode=True)
    coarse = smooth_fill(total / weight.clamp(min=1e-6), (weight > 0).to(image.dtype))
    up = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    return image * known + up * (1.0 - known)


def network_input(
    image: torch.Tensor, mask: torch.Tensor, previous: torch.Tensor | None
) -> torch.Tensor:
    """``(B, 8, H, W)`` from ``image`` ``(B, 3, H, W)`` in [0, 1], ``mask`` ``(B, 1, H, W)``
    (1 = hole) and ``previous`` ``(B, 3, H, W)`` or ``None``: the hole gets the previous
    frame's pixels (without one, ``smooth_fill``), and a flag channel says whether there
    is one."""
    if previous is None:
        previous = smooth_fill(image, 1.0 - mask)
        flag = torch.zeros_like(mask)
    else:
        flag = torch.ones_like(mask)
    filled = image * (1.0 - mask) + previous * mask
    return torch.cat([filled, mask, previous, flag], dim=1)


class Inpainter:
    """Runs an ``InpaintNet`` on ``uint8`` RGB images of any size (edge-padded to a
    multiple of 8 and cropped back)."""

    def __init__(self, net: InpaintNet, content_sha256: str = "") -> None:
        self.net = net.eval()
        self.content_sha256 = content_sha256

    @classmethod
    def load(cls, name_or_path: str = "inpaint") -> Inpainter:
        """A zoo name (``shared.registry.AUXILIARY``) or a model file path; raises
        ``ModelFileError`` when the file is missing, damaged or not an inpainting model."""
        from ..modelfile import ModelFileError, load_weights_file
        from ..registry import ZOO, resolve_auxiliary_path

        path, pinned = resolve_auxiliary_path(name_or_path)
        if name_or_path in ZOO and not path.exists():
            raise ModelFileError(f"{name_or_path!r} is a codec, not an inpainting model")
        loaded = load_weights_file(path)
        if pinned is not None and loaded.content_sha256 != pinned:
            raise ModelFileError(
                f"{path} is not the pinned {name_or_path} model (hash {loaded.short_hash})"
            )
        if loaded.architecture != InpaintNet.architecture:
            raise ModelFileError(f"{path} holds a {loaded.architecture!r} model, not inpaint")
        net = InpaintNet(InpaintConfig.from_dict(loaded.config))
        state = {k: torch.from_numpy(v.astype(np.float32)) for k, v in loaded.weights.items()}
        try:
            net.load_state_dict(state)
        except RuntimeError as error:
            raise ModelFileError(f"{path}: weights do not fit the inpaint network") from error
        return cls(net, loaded.content_sha256)

    @torch.no_grad()
    def __call__(
        self, image: np.ndarray, mask: np.ndarray, previous: np.ndarray | None = None
    ) -> np.ndarray:
        """``image`` ``(H, W, 3)`` ``uint8`` RGB, ``mask`` ``(H, W)`` bool or 0/1 (True =
        hole), ``previous`` like ``image`` or ``None`` -> the inpainted ``uint8`` image;
        pixels outside the mask are returned unchanged."""
        height, width = image.shape[:2]
        if mask.shape != (height, width):
            raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]}, image {width}x{height}")
        if previous is not None and previous.shape != image.shape:
            raise ValueError("the previous frame differs in size from the image")
        hole = np.asarray(mask, dtype=bool)
        pad_h, pad_w = -height % MULTIPLE, -width % MULTIPLE

        def tensor(array: np.ndarray) -> torch.Tensor:
            if array.ndim == 2:
                array = array[:, :, None]
            array = np.pad(array, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
            return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None]

        x = tensor(image).float() / 255.0
        m = tensor(hole.astype(np.float32))
        p = None if previous is None else tensor(previous).float() / 255.0
        out = self.net(network_input(x, m, p))[0, :, :height, :width]
        filled = (out.permute(1, 2, 0).numpy() * 255.0 + 0.5).clip(0, 255).astype(np.uint8)
        result = image.copy()
        result[hole] = filled[hole]
        return result


#: Pixel rows above and below a hole whose change since the previous frame decides
#: between copying the previous frame and running the network (``context_change``).
GATE_ROWS = 16
#: Mean absolute change (8-bit units) of those rows at or below which the previous frame
#: is copied: where the surroundings did not move, the hole most likely did not either,
#: and copying is what the network itself approaches, only exactly. Calibrated on
#: held-out *training* crops, never on video clips:
#: ``python -m training inpaint-gate --data ../shared/datasets/train --out runs/inpaint-gate``
#: (see ``training/inpaint_gate.py`` and the ``inpaint`` model card).
STILL_CHANGE = 2.84


def context_change(
    current: np.ndarray, previous: np.ndarray, hole: np.ndarray, rows: int = GATE_ROWS
) -> float | None:
    """Mean absolute difference (8-bit units) between ``current`` and ``previous``
    (``(H, W, 3)`` ``uint8``) over the known pixel rows within ``rows`` of the hole's rows
    (``hole``: ``(H, W)`` bool, whole rows, as a lost slice's band); ``None`` when no such
    row exists."""
    hole_rows = np.flatnonzero(np.asarray(hole, dtype=bool).any(axis=1))
    if hole_rows.size == 0:
        return None
    near = np.zeros(hole.shape[0], dtype=bool)
    first, last = int(hole_rows[0]), int(hole_rows[-1])
    near[max(0, first - rows) : last + 1 + rows] = True
    near[hole_rows] = False
    if not near.any():
        return None
    a = current[near].astype(np.int16)
    b = previous[near].astype(np.int16)
    return float(np.abs(a - b).mean())
