"""The image codec both ends share: model file -> ``compress`` / ``decompress``.

``compress(frame)`` runs the analysis transform, rounds the latents to integers and
entropy-codes them with the model's frozen tables; ``decompress`` inverts the entropy coding
exactly and runs the synthesis transform. The integers are the bitstream's content, so a
payload decodes to the same latents on every device; only the synthesis output may differ
across devices by floating-point rounding.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import constriction
import numpy as np
import torch

from .entropy.coder import (
    DECODE_ERRORS,
    CorruptPayload,
    GroupedCoder,
    LatentCoder,
    bytes_to_decoder,
    decode_payload,
    words_to_bytes,
)
from .entropy.gaussian import IMPLIED_ZERO_ROWS, SCALE_COUNT
from .entropy.tables import FrozenTables
from .frames import RgbTail, padded_size, rgb_to_tensor, tensor_to_rgb, to_rgb
from .modelfile import ModelFile, ModelFileError, load_model_file
from .models.hyperprior import PRIOR_TILE, HyperpriorModel
from .models.integer import IntegerNetwork
from .registry import (
    AUXILIARY,
    DEFAULT_MODEL,
    LITE_MODEL,
    ZOO,
    build_model,
    resolve_model_path,
)
from .wire import cut_payload

#: Parameters that only training uses; model files do not carry them.
TRAINING_ONLY_PREFIXES = ("density.", "h_s.")


@dataclass(frozen=True)
class Analysis:
    """Analysis output before rounding: ``scaled`` ``(1, M, h, w)`` float32 gained latents;
    ``z`` the ``(hyper, ceil(h/4), ceil(w/4))`` ``int32`` hyper-latents (hyperprior only)."""

    scaled: torch.Tensor
    z: np.ndarray | None


@dataclass(frozen=True)
class Latents:
    """What the bitstream carries: ``y`` ``(M, h, w)`` ``int32`` latents and, for the
    hyperprior, ``z`` its ``int32`` hyper-latents."""

    y: np.ndarray
    z: np.ndarray | None


@dataclass(frozen=True)
class CompressedFrame:
    """One coded frame.

    Attributes:
        payload: the entropy-coded latents (bytes): its slices one after another, each a
            multiple of 4 bytes.
        height, width: size of the original frame in pixels.
        level: quality level index used.
        kind: ``"key"`` (decodable on its own) or ``"inter"`` (predicted from the previous
            frame; see ``shared.video``).
        slice_rows: latent rows per slice; ``0`` = the whole frame is one slice.
        slice_bytes: bytes of each slice in order; empty = one slice of the whole payload.
    """

    payload: bytes
    height: int
    width: int
    level: int
    kind: str = "key"
    slice_rows: int = 0
    slice_bytes: tuple[int, ...] = ()

    def slices(self) -> list[bytes]:
        """The payload cut into its slices (``CorruptPayload`` when their lengths do not
        add up to it)."""
        try:
            return cut_payload(self.payload, self.slice_bytes)
        except ValueError as error:
            raise CorruptPayload(str(error)) from error


PRECISIONS = ("auto", "fp32", "bf16")


def configure_threads(threads: int) -> int:
    """Set PyTorch's intra-op threads; ``0`` means half the cores (at least one), so that a
    sender and a receiver on one machine do not compete for the same cores. Returns the
    number set."""
    if threads < 0:
        raise ValueError("threads must be >= 0")
    chosen = threads or max(1, (os.cpu_count() or 2) // 2)
    torch.set_num_threads(chosen)
    return chosen


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bfloat16 convolutions natively (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def select_precision(name: str, device: torch.device) -> torch.dtype:
    """The transforms' compute dtype: ``"auto"`` is bfloat16 on a CPU that runs it natively
    (about 2.5x faster than float32 there) and float32 everywhere else."""
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {name!r}")
    if name == "bf16" or (name == "auto" and device.type == "cpu" and cpu_has_native_bf16()):
        return torch.bfloat16
    return torch.float32


def default_model(device: str = "auto", precision: str = "auto") -> str:
    """The zoo model an end uses when none is named: ``DEFAULT_MODEL`` where its transforms
    run fast (on a GPU, or in bfloat16 on a CPU that computes it natively), else
    ``LITE_MODEL``, which does half the work: in float32 on one core ``DEFAULT_MODEL`` takes
    about 20 ms per 640x480 frame and end, more than 30 fps with both ends on a 2-core
    machine allows (``docs/speed_fp32_avx2.json``). Both decode each other's streams; this
    only picks the start."""
    chosen = select_device(device)
    if chosen.type == "cuda":
        return DEFAULT_MODEL
    if select_precision(precision, chosen) == torch.bfloat16 and cpu_has_native_bf16():
        return DEFAULT_MODEL
    return LITE_MODEL


def select_device(name: str) -> torch.device:
    """``"auto"`` picks CUDA when available, else CPU; ``"cpu"``/``"cuda"`` force one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA GPU is available")
    return torch.device(name)


class ImageCodec:
    """A loaded model: transforms on ``device`` plus the integer entropy coder.

    ``precision`` sets the dtype the transforms compute in (see ``select_precision``). It
    changes neither the bitstream format nor its decoding: a payload decodes to the same
    integer latents whatever either end computes in; only pixel values may differ slightly.
    """

    def __init__(
        self,
        model_file: ModelFile,
        device: str = "cpu",
        precision: str = "fp32",
        channels_last: bool = True,
    ) -> None:
        self.model_file = model_file
        self.device = select_device(device)
        # channels_last is oneDNN's fast layout for these convolutions (measured 1.2-3x);
        # NCHW stays selectable (the exactness tests run both).
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.precision = precision
        self.dtype = select_precision(precision, self.device)
        try:
            model = build_model(model_file.architecture, model_file.config)
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"model file describes an unusable model: {error}") from error
        state = {name: torch.from_numpy(value) for name, value in model_file.weights.items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        # The training-time densities are replaced by the frozen tables.
        missing = [name for name in missing if not name.startswith(TRAINING_ONLY_PREFIXES)]
        if missing or unexpected:
            raise ModelFileError(f"model weights do not fit: missing {missing}, extra {unexpected}")
        self.model = model.to(self.device, memory_format=self.memory_format).eval()
        # The synthesis' last 1x1 convolution and pixel shuffle, computed faster (see RgbTail).
        self._rgb_tail = RgbTail.of(model.g_s)
        self._synthesis_body = model.g_s[:-2] if self._rgb_tail is not None else None
        self.hyper = isinstance(model, HyperpriorModel)
        try:
            if self.hyper:
                model.integer_h_s = IntegerNetwork.from_tensors(model_file.extras, "integer/h_s/")
                self.z_coder = GroupedCoder(model_file.tables)
                self.coder = GroupedCoder(
                    FrozenTables.from_tensors(model_file.extras, "scale_tables/"),
                    zero_rows=IMPLIED_ZERO_ROWS,
                )
                if self.z_coder.tables.channels != model.config.hyper:
                    raise ValueError("hyper-latent tables do not match the model")
                if self.coder.tables.channels != SCALE_COUNT:
                    raise ValueError("scale tables do not match the scale table")
                model.check_prior()
            else:
                self.coder = LatentCoder(model_file.tables)
                if self.coder.tables.channels != model.config.latent:
                    raise ValueError("entropy tables do not match the model's latent channels")
        except (KeyError, ValueError) as error:
            raise ModelFileError(f"model file has unusable entropy data: {error}") from error

    @classmethod
    def load(cls, name_or_path: str, device: str = "cpu", precision: str = "fp32") -> ImageCodec:
        """Load a zoo model by name (e.g. ``"fast"``) or a model file by path."""
        path, pinned = resolve_model_path(name_or_path)
        if not Path(path).exists():
            if name_or_path in AUXILIARY:
                raise ModelFileError(
                    f"{name_or_path!r} is the receiver's inpainting network, not a codec; "
                    f"codecs: {', '.join(ZOO)}"
                )
            raise ModelFileError(f"model {name_or_path!r} not found (no file {path})")
        model_file = load_model_file(path)
        if pinned is not None and model_file.content_sha256 != pinned:
            raise ModelFileError(
                f"zoo model {name_or_path!r} ({path}) is not the file this release pins "
                f"(hash {model_file.content_sha256[:16]}, expected {pinned[:16]})"
            )
        return cls(model_file, device, precision)

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

    def _autocast(self):
        return torch.autocast(
            self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32
        )

    def to_tensor(self, rgb: np.ndarray) -> torch.Tensor:
        """``(1, 3, H', W')`` padded input on the codec's device, channels-last."""
        tensor = rgb_to_tensor(rgb, self.stride).to(self.device)
        return tensor.contiguous(memory_format=self.memory_format)

    @torch.inference_mode()
    def transform(self, tensor: torch.Tensor, level: int, hyper: bool = True) -> Analysis:
        """Gained float32 latents ``g_a(x) * gain[level]``, shape ``(1, M, h, w)``, and for
        the hyperprior (unless ``hyper=False``: predicted frames need none) the integer
        hyper-latents."""
        with self._autocast():
            code = self.model.g_a(tensor)
            z = None
            if self.hyper and hyper:
                z = torch.round(self.model.tiled_hyper_latents(code).float())
                z = z[0].to(torch.int32).cpu().numpy()
        return Analysis(code.float() * self.model.gain(level), z)

    @staticmethod
    def quantize(analysis: Analysis) -> Latents:
        """Round gained latents to the ``(M, h, w)`` ``int32`` symbols of the bitstream."""
        # C-contiguous (channels_last analysis output would give strided (M, h, w) views,
        # which every later whole-array operation then walks slowly).
        y = torch.round(analysis.scaled[0]).to(torch.int32).cpu().contiguous().numpy()
        return Latents(y, analysis.z)

    def analyze(self, rgb: np.ndarray, level: int) -> np.ndarray:
        """Integer latents ``(M, h, w)`` ``int32`` of an ``(H, W, 3)`` ``uint8`` RGB frame."""
        return self.analyze_all(rgb, level).y

    def analyze_all(self, rgb: np.ndarray, level: int) -> Latents:
        """Everything the bitstream carries for one frame (latents and hyper-latents)."""
        return self.quantize(self.transform(self.to_tensor(rgb), level))

    def hyper_shape(self, shape: tuple[int, int, int]) -> tuple[int, int, int]:
        _, height, width = shape
        return self.model.config.hyper, -(-height // 4), -(-width // 4)

    def entropy_encode(self, latents: Latents, level: int) -> bytes:
        """The payload of one frame: ANS words (``uint32`` little-endian) as bytes.

        Hyperprior: sets ``latents.y`` to 0, in place, where the prior implies zeros (see
        ``IMPLIED_ZERO_ROWS``), so the caller holds exactly the latents a decoder gets."""
        if not self.hyper:
            return self.coder.encode(latents.y, level)
        self._check_hyper(latents, level)
        indices = self.model.table_indices(latents.z, level, latents.y.shape[1:])
        return self._encode_hyper(latents, indices)

    def _zero_implied(self, y: np.ndarray, indices: np.ndarray) -> None:
        """Set ``y`` to 0 in place where the coder leaves values out (its ``zero_rows``)."""
        # A product with the mask: more than 10x faster than putmask or boolean indexing.
        np.multiply(y, indices >= self.coder.zero_rows, out=y)

    def _check_hyper(self, latents: Latents, level: int) -> None:
        self.check_level(level)
        if latents.z is None or latents.z.shape != self.hyper_shape(latents.y.shape):
            raise ValueError("the hyperprior needs hyper-latents of the latents' shape")

    def _encode_hyper(self, latents: Latents, indices: np.ndarray) -> bytes:
        """Hyperprior payload: ``y`` with its table ``indices`` (popped last), then ``z``;
        zeroes the implied zeros of ``y`` in place."""
        self._zero_implied(latents.y, indices)
        coder = constriction.stream.stack.AnsCoder()
        self.coder.encode_into(coder, latents.y, indices, 0)
        self.z_coder.encode_channels_into(coder, latents.z, 0)
        return words_to_bytes(coder)

    def entropy_encode_bands(
        self, latents: Latents, level: int, bands: list[tuple[int, int]]
    ) -> list[bytes]:
        """One payload per band of latent rows ``[(first, end), ...]``, each exactly
        ``entropy_encode`` of that band alone (so each decodes on its own; implied zeros
        are set in ``latents.y`` likewise). When every
        band boundary lies on a prior-tile row (``PRIOR_TILE``), the bands' tiles are the
        frame's, and the prior network runs once for the frame instead of once per band."""
        if not self.hyper or not _tile_aligned(bands):
            return [self.entropy_encode(band_of(latents, a, b), level) for a, b in bands]
        self._check_hyper(latents, level)
        indices = self.model.table_indices(latents.z, level, latents.y.shape[1:])
        return [
            self._encode_hyper(band_of(latents, first, end), indices[:, first:end])
            for first, end in bands
        ]

    def information_bits(self, latents: Latents, level: int) -> float:
        """The tables' information content of ``latents`` (``sum(-log2 p)`` plus 32 bits per
        escape): the size ``entropy_encode`` approaches, in bits."""
        if not self.hyper:
            return self.coder.information_bits(latents.y, level)
        indices = self.model.table_indices(latents.z, level, latents.y.shape[1:])
        rows = LatentCoder.channel_rows(latents.z.shape)
        return self.coder.information_bits(latents.y, indices, 0) + (
            self.z_coder.information_bits(latents.z, rows, 0)
        )

    def entropy_decode(self, payload: bytes, level: int, shape: tuple[int, int, int]) -> Latents:
        """Inverse of ``entropy_encode``; raises ``CorruptPayload`` on bad data."""
        if not self.hyper:
            return Latents(self.coder.decode(payload, level, shape), None)
        self.check_level(level)
        z_shape = self.hyper_shape(shape)

        def pop(decoder) -> tuple[np.ndarray, np.ndarray]:
            z = self.z_coder.decode_channels_from(decoder, z_shape, 0)
            indices = self.model.table_indices(z, level, shape[1:])
            return self.coder.decode_from(decoder, indices, 0), z

        y, z = decode_payload(payload, pop)
        return Latents(y, z)

    def entropy_decode_bands(
        self,
        pieces: list[bytes | None],
        level: int,
        shape: tuple[int, int, int],
        bands: list[tuple[int, int]],
        out: np.ndarray,
        z_out: np.ndarray | None = None,
    ) -> list[int]:
        """Decode the payloads of ``entropy_encode_bands`` (``None``: a missing one) into
        ``out[:, first:end]`` of the ``(M, h, w)`` array ``out``. Returns the indices of
        the bands that are missing or do not decode; their rows of ``out`` are left as
        they were. ``z_out`` (hyperprior, optional) receives the hyper-latents likewise.
        With tile-aligned bands the hyper-latents of every band are popped
        first and the prior network runs once for the frame (a band's table indices depend
        on its own hyper-latents only, so a damaged band cannot affect the others)."""
        self.check_level(level)
        damaged: list[int] = []
        if not self.hyper or not _tile_aligned(bands):
            for index, ((first, end), data) in enumerate(zip(bands, pieces, strict=True)):
                try:
                    if data is None:
                        raise CorruptPayload("missing")
                    band_shape = (shape[0], end - first, shape[2])
                    band = self.entropy_decode(data, level, band_shape)
                    out[:, first:end] = band.y
                    if z_out is not None and band.z is not None:
                        z_out[:, hyper_rows(first, end)] = band.z
                except CorruptPayload:
                    damaged.append(index)
            return damaged
        z = np.zeros(self.hyper_shape(shape), dtype=np.int64)
        decoders = {}
        for index, ((first, end), data) in enumerate(zip(bands, pieces, strict=True)):
            try:
                if data is None:
                    raise CorruptPayload("missing")
                decoder = bytes_to_decoder(data)
                band_z = z[:, hyper_rows(first, end)]
                band_z[...] = self.z_coder.decode_channels_from(decoder, band_z.shape, 0)
                decoders[index] = decoder
            except DECODE_ERRORS:
                damaged.append(index)
        indices = self.model.table_indices(z, level, shape[1:])
        for index, decoder in decoders.items():
            first, end = bands[index]
            try:
                y = self.coder.decode_from(decoder, indices[:, first:end], 0)
                if not decoder.is_empty():
                    raise CorruptPayload("payload has data left after the last symbol")
                out[:, first:end] = y
            except DECODE_ERRORS:
                damaged.append(index)
        if z_out is not None:
            z_out[...] = z
        return sorted(damaged)

    @torch.inference_mode()
    def synthesize(self, latents: np.ndarray, level: int, height: int, width: int) -> np.ndarray:
        """``(height, width, 3)`` ``uint8`` RGB from ``(M, h, w)`` integer latents."""
        tensor = torch.from_numpy(latents.astype(np.float32)).unsqueeze(0).to(self.device)
        tensor = (tensor * self.model.inverse_gain(level)).contiguous(
            memory_format=self.memory_format
        )
        with self._autocast():
            if self._rgb_tail is not None:
                return self._rgb_tail(self._synthesis_body(tensor), height, width)
            image = self.model.g_s(tensor)
        return tensor_to_rgb(image.float(), height, width)

    def compress(self, frame: np.ndarray, level: int, color_order: str = "rgb") -> CompressedFrame:
        """Code one frame (any size up to 4096x4096, gray/RGB/BGR ``uint8``)."""
        self.check_level(level)
        rgb = to_rgb(frame, color_order)
        payload = self.entropy_encode(self.analyze_all(rgb, level), level)
        return CompressedFrame(payload, rgb.shape[0], rgb.shape[1], level)

    def decompress(self, frame: CompressedFrame) -> np.ndarray:
        """``(H, W, 3)`` ``uint8`` RGB reconstruction. Raises ``CorruptPayload`` on bad data."""
        return self.decompress_with_latents(frame)[0]

    def decompress_with_latents(self, frame: CompressedFrame) -> tuple[np.ndarray, Latents]:
        """The reconstruction and the decoded latents of a key frame (any slicing); predicted
        frames need the previous frame (``shared.video.VideoDecoder``)."""
        self.check_level(frame.level)
        if frame.kind != "key":
            raise ValueError("a predicted frame needs its reference: use shared.video")
        shape = self.latent_shape(frame.height, frame.width)
        pieces = frame.slices()
        if len(pieces) == 1:
            latents = self.entropy_decode(frame.payload, frame.level, shape)
        else:
            rows = frame.slice_rows
            if rows <= 0 or -(-shape[1] // rows) != len(pieces):
                raise CorruptPayload(f"{len(pieces)} slices do not fit {shape[1]} latent rows")
            bands = slice_bands(shape[1], rows)
            y = np.zeros(shape, dtype=np.int32)
            z = np.zeros(self.hyper_shape(shape), dtype=np.int32) if self.hyper else None
            damaged = self.entropy_decode_bands(pieces, frame.level, shape, bands, y, z)
            if damaged:
                raise CorruptPayload(f"slices {damaged} do not decode")
            latents = Latents(y, z)
        return self.synthesize(latents.y, frame.level, frame.height, frame.width), latents


def hyper_rows(first: int, end: int) -> slice:
    """The hyper-latent rows that latent rows ``first:end`` depend on (4 latent rows each)."""
    return slice(first // 4, -(-end // 4))


def band_of(latents: Latents, first: int, end: int) -> Latents:
    """Latent rows ``first:end`` and the hyper-latent rows they depend on."""
    z = None if latents.z is None else latents.z[:, hyper_rows(first, end)]
    return Latents(latents.y[:, first:end], z)


def _tile_aligned(bands: list[tuple[int, int]]) -> bool:
    """True when every band starts on a prior-tile row and all but the last end on one."""
    return all(first % PRIOR_TILE == 0 for first, _ in bands) and all(
        end % PRIOR_TILE == 0 for _, end in bands[:-1]
    )


def slice_bands(latent_rows: int, slice_rows: int) -> list[tuple[int, int]]:
    """``[(first, end), ...]`` latent row ranges of the slices; ``slice_rows = 0`` is one
    slice for the whole frame."""
    if slice_rows <= 0:
        return [(0, latent_rows)]
    return [(r, min(r + slice_rows, latent_rows)) for r in range(0, latent_rows, slice_rows)]
