"""Frozen tables for inter-frame residuals: zero-mean discretized Gaussians.

A predicted frame codes ``y - reference`` per latent channel with one row of these tables;
the sender picks the row (a scale index) per slice and channel from the residuals it is
about to code and sends it. The integer frequencies are computed once (``build``) and shipped
as ``residual_tables.safetensors`` with a pinned hash, so no decoder ever evaluates a
Gaussian: floating-point ``erfc`` may differ in its last bit between platforms, and one
differing frequency would desynchronise the decoder.
"""

from __future__ import annotations

import hashlib
import math
from functools import cache
from pathlib import Path

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from .gaussian import gaussian_tables
from .tables import FrozenTables

RESIDUAL_SCALE_MIN = 0.12
RESIDUAL_SCALE_MAX = 48.0
RESIDUAL_SCALE_COUNT = 32
TABLES_FILE = Path(__file__).with_name("residual_tables.safetensors")
TABLES_SHA256 = "fccd579c6d9b7a89befa6133692798898fb5d4fd32e3a1d67b408f173f409b3a"


def residual_scales() -> np.ndarray:
    """``RESIDUAL_SCALE_COUNT`` standard deviations (latent units), log-spaced."""
    return np.exp(
        np.linspace(
            math.log(RESIDUAL_SCALE_MIN), math.log(RESIDUAL_SCALE_MAX), RESIDUAL_SCALE_COUNT
        )
    )


def build() -> FrozenTables:
    """Compute the tables (one level, one "channel" per scale); used to write the file."""
    return gaussian_tables(residual_scales())


def write(path: Path = TABLES_FILE) -> str:
    """Write the tables file; returns its SHA-256 (to pin in ``TABLES_SHA256``)."""
    data = st_save(build().to_tensors(""))
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


@cache
def residual_tables() -> FrozenTables:
    """The shipped residual tables; raises ``ValueError`` when the file is not the pinned one."""
    data = TABLES_FILE.read_bytes()
    if hashlib.sha256(data).hexdigest() != TABLES_SHA256:
        raise ValueError(f"{TABLES_FILE} is not the file this release pins")
    return FrozenTables.from_tensors(st_load(data), "")


if __name__ == "__main__":
    print(write())
