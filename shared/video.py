"""Video coding on top of ``ImageCodec``: key and predicted frames, cut into slices.

A *key* frame is coded on its own (the image codec's bitstream); a *predicted* ("inter")
frame codes its integer latents as a residual against the previous frame's decoded latents
(``shared.inter``). Either kind is cut into *slices*: bands of ``slice_rows`` latent rows
(``16 * slice_rows`` pixels), each an independent ANS stream, so a damaged slice loses only
its band. For the hyperprior each band carries its own hyper-latents (``slice_rows`` is a
multiple of 4, the hyper-latents' stride), so its entropy parameters depend on nothing
outside the band.

State: the encoder and every decoder keep the last frame's integer latents and level. A
predicted frame ``seq`` refers to frame ``seq - 1``; a decoder that missed it, or decoded it
with damaged slices, cannot follow the encoder exactly until the next key frame
(``VideoDecoder.synchronized`` says so, and a receiver asks for a key frame).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import constriction
import numpy as np

from .codec import CompressedFrame, ImageCodec, Latents, slice_bands
from .entropy.coder import CorruptPayload, decode_payload, words_to_bytes
from .frames import to_rgb
from .inter import GainRescaler, InterCoder, QualityMap, choose_latents, quantize_key

KEY = "key"
INTER = "inter"
KINDS = (KEY, INTER)
DEFAULT_SLICE_ROWS = 8  # latent rows per slice: 128 pixel rows; 4 slices at 640x480
MAX_SLICES = 64


class MissingReference(ValueError):
    """A predicted frame arrived but its reference frame was not decoded here."""


@dataclass(frozen=True)
class VideoSettings:
    """Encoder-side choices; none of them changes what a decoder must do.

    Attributes:
        keyframe_interval: a key frame every this many frames (1 = intra only).
        slice_rows: latent rows per slice (a multiple of 4; 0 = one slice).
        deadzone: latents keep their reference value while within ``0.5 + deadzone`` of it
            (latent units), so noise does not cost bits (``inter.choose_latents``).
        skip_l1: positions whose residual L1 norm over channels is at most this are skipped.
    """

    keyframe_interval: int = 300
    slice_rows: int = DEFAULT_SLICE_ROWS
    deadzone: float = 0.2
    skip_l1: int = 1

    def __post_init__(self) -> None:
        if self.keyframe_interval < 1:
            raise ValueError("the key-frame interval must be at least 1 frame")
        if self.slice_rows < 0 or self.slice_rows % 4:
            raise ValueError("slice rows must be a non-negative multiple of 4")
        if not 0.0 <= self.deadzone <= 2.0:
            raise ValueError(f"the deadzone (--deadzone) must be in 0..2, not {self.deadzone}")
        if self.skip_l1 < 0:
            raise ValueError("skip_l1 must be non-negative")


@dataclass
class _Reference:
    latents: np.ndarray  # (C, h, w) int64
    level: int
    seq: int


class VideoEncoder:
    """Encodes a sequence of frames of one size into key and predicted frames."""

    def __init__(self, codec: ImageCodec, settings: VideoSettings | None = None) -> None:
        self.codec = codec
        self.settings = settings or VideoSettings()
        self.inter = InterCoder()
        self.rescaler = GainRescaler(codec.model.log_gain.detach().cpu().numpy())
        self.reference: _Reference | None = None
        self.since_key = 0
        self.seq = -1
        self.last_latents: np.ndarray | None = None

    def request_key_frame(self) -> None:
        """Make the next frame a key frame (e.g. a receiver joined or lost sync)."""
        self.reference = None

    def next_is_key(self, shape: tuple[int, int, int] | None = None) -> bool:
        """Whether the next frame (of latent ``shape``, when known) will be a key frame."""
        reference = self.reference
        return (
            reference is None
            or (shape is not None and reference.latents.shape != shape)
            or self.since_key + 1 >= self.settings.keyframe_interval
        )

    def encode(
        self,
        frame: np.ndarray,
        level: int,
        color_order: str = "rgb",
        quality: QualityMap | None = None,
    ) -> CompressedFrame:
        """Code the next frame (``uint8`` gray/RGB/BGR) at quality ``level``.

        ``quality``: an optional spatial quality map over the latent positions (e.g. less
        care outside a face, ``shared.roi``); ``None`` codes every position alike. Either
        way the frame decodes with the same ``VideoDecoder``.
        """
        codec = self.codec
        codec.check_level(level)
        rgb = to_rgb(frame, color_order)
        height, width = rgb.shape[:2]
        shape = codec.latent_shape(height, width)
        if quality is not None:
            quality.check(shape)
        self.seq += 1
        reference = self.reference
        key = self.next_is_key(shape)
        tensor = codec.to_tensor(rgb)
        bands = slice_bands(shape[1], self.settings.slice_rows)
        if key:
            analysis = codec.transform(tensor, level)
            latents = codec.quantize(analysis)
            if quality is not None:
                y = quantize_key(analysis.scaled[0].cpu().numpy(), latents.y, quality.key_deadzone)
                latents = Latents(y, latents.z)
            slices = codec.entropy_encode_bands(latents, level, bands)
            y = latents.y.astype(np.int64)
            self.since_key = 0
        else:
            scaled = codec.transform(tensor, level, hyper=False).scaled[0].cpu().numpy()
            predicted = self.rescaler.rescale(reference.latents, reference.level, level)
            deadzone, skip_l1 = self.settings.deadzone, self.settings.skip_l1
            if quality is not None:
                deadzone, skip_l1 = deadzone + quality.deadzone, skip_l1 + quality.skip_l1
            y, skip = choose_latents(scaled, predicted, deadzone, skip_l1)
            residual = y - predicted
            slices = []
            for a, b in bands:
                coder = constriction.stream.stack.AnsCoder()
                self.inter.encode_into(coder, residual[:, a:b], skip[a:b])
                slices.append(words_to_bytes(coder))
            self.since_key += 1
        self.reference = _Reference(y, level, self.seq)
        self.last_latents = y
        return CompressedFrame(
            payload=b"".join(slices),
            height=height,
            width=width,
            level=level,
            kind=KEY if key else INTER,
            slice_rows=self.settings.slice_rows,
            slice_bytes=tuple(len(s) for s in slices),
        )


@dataclass
class DecodedFrame:
    """A decoded frame: ``rgb`` ``(H, W, 3)`` ``uint8``, ``latents`` ``(C, h, w)`` ``int64``,
    and ``damaged``: indices of slices that were missing or undecodable (their bands hold a
    prediction from the previous frame, or zeros without one)."""

    rgb: np.ndarray | None
    latents: np.ndarray
    damaged: list[int] = field(default_factory=list)


class VideoDecoder:
    """Decodes the frames of ``VideoEncoder`` in order (one decoder per stream)."""

    def __init__(self, codec: ImageCodec) -> None:
        self.codec = codec
        self.inter = InterCoder()
        self.rescaler = GainRescaler(codec.model.log_gain.detach().cpu().numpy())
        self.reference: _Reference | None = None
        self.synchronized = False  # True while our latents equal the encoder's

    def decode(
        self,
        frame: CompressedFrame,
        seq: int,
        missing: frozenset[int] = frozenset(),
        synthesize: bool = True,
    ) -> DecodedFrame:
        """Decode frame ``seq``; slices in ``missing`` are treated as lost.

        Raises ``MissingReference`` for a predicted frame whose reference (frame ``seq - 1``)
        was not decoded here, and ``CorruptPayload`` only when no slice at all decodes.
        ``synthesize=False`` updates the state without running the synthesis transform
        (``rgb`` is ``None``), for a receiver that is catching up.
        """
        codec = self.codec
        codec.check_level(frame.level)
        shape = codec.latent_shape(frame.height, frame.width)
        reference = self.reference
        predicted = None
        if reference is not None and reference.latents.shape == shape:
            predicted = self.rescaler.rescale(reference.latents, reference.level, frame.level)
        if frame.kind == INTER and (predicted is None or reference.seq != seq - 1):
            self.synchronized = False
            raise MissingReference(f"frame {seq} is predicted from a frame not decoded here")
        bands = slice_bands(shape[1], frame.slice_rows)
        pieces = frame.slices()
        if len(pieces) != len(bands):
            raise CorruptPayload(f"{len(pieces)} slices for a frame of {len(bands)}")
        latents = np.zeros(shape, dtype=np.int64) if predicted is None else predicted.copy()
        if frame.kind == KEY:
            available = [None if i in missing else data for i, data in enumerate(pieces)]
            damaged = codec.entropy_decode_bands(available, frame.level, shape, bands, latents)
        else:
            damaged = []
            for index, ((first, end), data) in enumerate(zip(bands, pieces, strict=True)):
                if index in missing:
                    damaged.append(index)
                    continue
                band_shape = (shape[0], end - first, shape[2])
                try:
                    residual = decode_payload(
                        data, lambda d, s=band_shape: self.inter.decode_from(d, *s)
                    )
                    latents[:, first:end] += residual
                except CorruptPayload:
                    damaged.append(index)
        if len(damaged) == len(bands):
            self.synchronized = False
            raise CorruptPayload("no slice of the frame decoded")
        if frame.kind == KEY:
            self.synchronized = not damaged
        elif damaged:
            self.synchronized = False
        self.reference = _Reference(latents, frame.level, seq)
        rgb = None
        if synthesize:
            rgb = codec.synthesize(latents, frame.level, frame.height, frame.width)
        return DecodedFrame(rgb, latents, damaged)
