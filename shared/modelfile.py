"""Model files: safetensors tensors plus JSON metadata, with a content hash.

Layout of a ``.safetensors`` model file:

- tensors ``weights/<name>``: the transform parameters (``float32``);
- tensors ``tables/freqs``, ``tables/offsets``, ``tables/lengths``: the frozen entropy tables
  (``int32``, see ``shared.entropy.tables``);
- optional further tensors under other prefixes that an architecture needs, e.g. the
  hyperprior's ``integer/h_s/*`` (its fixed-point prior network) and ``scale_tables/*``
  (its Gaussian tables, laid out like ``tables/*``);
- metadata key ``latentcast``: JSON with ``format_version``, ``architecture``, ``config``
  (the architecture's dataclass as a dict), ``card`` (free-form provenance) and
  ``content_sha256``.

``content_sha256`` is the SHA-256 of the canonical JSON of (architecture, config) followed by
every tensor's name, dtype, shape and raw bytes in name order. ``load_model_file`` recomputes
it and refuses a file whose content does not match, so a tampered or truncated file is never
used. safetensors never unpickles, so loading executes no code from the file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from .entropy.tables import FrozenTables

FORMAT_VERSION = 2  # 2: tables stored without padding (see FrozenTables.to_tensors)
READABLE_VERSIONS = (1, 2)
METADATA_KEY = "latentcast"


class ModelFileError(ValueError):
    """A model file is missing, malformed, of another format version, or tampered with."""


@dataclass(frozen=True)
class ModelFile:
    """The parsed content of a model file."""

    architecture: str
    config: dict
    weights: dict[str, np.ndarray]
    tables: FrozenTables
    card: dict
    content_sha256: str
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def short_hash(self) -> str:
        """First 16 hex digits of the content hash, as carried in every wire message."""
        return self.content_sha256[:16]


def content_hash(architecture: str, config: dict, tensors: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([architecture, config], sort_keys=True).encode())
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _tensors(
    weights: dict[str, np.ndarray], tables: FrozenTables, extras: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    tensors = {f"weights/{name}": np.ascontiguousarray(value) for name, value in weights.items()}
    for name, value in extras.items():
        if name.startswith(("weights/", "tables/")):
            raise ValueError(f"extra tensor {name!r} uses a reserved prefix")
        tensors[name] = np.ascontiguousarray(value)
    tensors |= tables.to_tensors("tables/")
    return tensors


def save_model_file(
    path: str | Path,
    architecture: str,
    config: dict,
    weights: dict[str, np.ndarray],
    tables: FrozenTables,
    card: dict,
    extras: dict[str, np.ndarray] | None = None,
) -> str:
    """Write a model file; returns its ``content_sha256``."""
    tables.validate()
    return _write(path, architecture, config, _tensors(weights, tables, extras or {}), card)


def _write(
    path: str | Path, architecture: str, config: dict, tensors: dict[str, np.ndarray], card: dict
) -> str:
    """Write ``tensors`` with the metadata and content hash; returns the hash."""
    sha = content_hash(architecture, config, tensors)
    metadata = {
        "format_version": FORMAT_VERSION,
        "architecture": architecture,
        "config": config,
        "card": card,
        "content_sha256": sha,
    }
    Path(path).write_bytes(st_save(tensors, metadata={METADATA_KEY: json.dumps(metadata)}))
    return sha


def _read_metadata(raw: bytes) -> dict:
    # The safetensors header: 8-byte little-endian length, then JSON.
    if len(raw) < 8:
        raise ModelFileError("file is too short to be a safetensors file")
    size = int.from_bytes(raw[:8], "little")
    if size > len(raw) - 8:
        raise ModelFileError("safetensors header length exceeds the file")
    try:
        header = json.loads(raw[8 : 8 + size])
        return json.loads(header["__metadata__"][METADATA_KEY])
    except (ValueError, KeyError, TypeError) as error:
        raise ModelFileError("no latentcast metadata in the safetensors header") from error


def _read_verified(path: str | Path) -> tuple[dict, dict[str, np.ndarray], str, dict, str]:
    """``(metadata, tensors, architecture, config, content_sha256)`` of a model file whose
    format version and content hash check out; raises ``ModelFileError`` otherwise."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ModelFileError(f"cannot read model file {path}: {error.strerror}") from error
    try:
        meta = _read_metadata(raw)
    except ModelFileError as error:
        raise ModelFileError(f"{path} is not a latentcast model file: {error}") from None
    if meta.get("format_version") not in READABLE_VERSIONS:
        raise ModelFileError(
            f"model file {path} has format version {meta.get('format_version')}, "
            f"this latentcast reads versions {READABLE_VERSIONS}"
        )
    try:
        tensors = st_load(raw)
    except (SafetensorError, ValueError) as error:
        raise ModelFileError(f"model file {path} is corrupt: {error}") from error
    try:
        architecture = str(meta["architecture"])
        config = dict(meta["config"])
        expected = str(meta["content_sha256"])
    except KeyError as error:
        raise ModelFileError(f"model file {path} lacks {error}") from error
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"model file {path} is corrupt: {error}") from error
    actual = content_hash(architecture, config, tensors)
    if actual != expected:
        raise ModelFileError(
            f"model file {path} fails its content hash (expected {expected[:16]}, "
            f"got {actual[:16]}): it was modified or damaged"
        )
    return meta, tensors, architecture, config, actual


def _weights(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        name.removeprefix("weights/"): value
        for name, value in tensors.items()
        if name.startswith("weights/")
    }


def load_model_file(path: str | Path) -> ModelFile:
    """Read and verify a model file; raises ``ModelFileError`` on any problem."""
    meta, tensors, architecture, config, actual = _read_verified(path)
    try:
        tables = FrozenTables.from_tensors(tensors, "tables/")
    except KeyError as error:
        raise ModelFileError(f"model file {path} lacks {error}") from error
    except ValueError as error:
        raise ModelFileError(f"model file {path} has invalid tables: {error}") from error
    extras = {
        name: value
        for name, value in tensors.items()
        if not name.startswith(("weights/", "tables/"))
    }
    return ModelFile(
        architecture=architecture,
        config=config,
        weights=_weights(tensors),
        tables=tables,
        card=dict(meta.get("card", {})),
        content_sha256=actual,
        extras=extras,
    )


@dataclass(frozen=True)
class WeightsFile:
    """A model file of a network that is no codec (e.g. the inpainting network): weights,
    architecture, config and card, without entropy tables."""

    architecture: str
    config: dict
    weights: dict[str, np.ndarray]
    card: dict
    content_sha256: str

    @property
    def short_hash(self) -> str:
        return self.content_sha256[:16]


def save_weights_file(
    path: str | Path, architecture: str, config: dict, weights: dict[str, np.ndarray], card: dict
) -> str:
    """Write a tables-free model file (same layout and hash as ``save_model_file``);
    returns its ``content_sha256``."""
    tensors = {f"weights/{name}": np.ascontiguousarray(value) for name, value in weights.items()}
    return _write(path, architecture, config, tensors, card)


def load_weights_file(path: str | Path) -> WeightsFile:
    """Read and verify a tables-free model file; raises ``ModelFileError`` on any problem
    (missing, not safetensors, other format version, content hash mismatch)."""
    meta, tensors, architecture, config, actual = _read_verified(path)
    return WeightsFile(architecture, config, _weights(tensors), dict(meta.get("card", {})), actual)
