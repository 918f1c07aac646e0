"""CompressAI's ``bmshj2018-factorized`` transforms, for timing beside ours.

CompressAI (PyPI ``compressai``) is installed without its dependencies (``make install``
does it): its declared requirements pin numpy < 2 and pull torchvision and torch-geometric,
whose PyPI builds replace our torch or fail to load beside the CPU build. Its package
``__init__`` imports those (datasets, transforms, point clouds) eagerly, so this module
imports only what the image models need: ``compressai.models.google`` with the packages
``compressai``, ``compressai.models`` and ``compressai.registry`` entered as bare packages
(their ``__init__`` files skipped). The only names the skipped top-level ``__init__`` would
have provided to the model code are the entropy-coder selectors, answered here as that
``__init__`` answers them without the optional ``range_coder`` package ("ans").
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import types
from pathlib import Path

from torch import nn


def _bare_package(name: str, path: Path) -> types.ModuleType:
    module = sys.modules.get(name)
    if module is None:
        module = types.ModuleType(name)
        module.__path__ = [str(path)]
        sys.modules[name] = module
    return module


@functools.cache
def _factorized_prior_class() -> type:
    spec = importlib.util.find_spec("compressai")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("compressai is not installed (make install adds it)")
    root = Path(spec.submodule_search_locations[0])
    top = _bare_package("compressai", root)
    top.get_entropy_coder = lambda: "ans"
    top.available_entropy_coders = lambda: ["ans"]
    _bare_package("compressai.models", root / "models")
    registry = _bare_package("compressai.registry", root / "registry")
    import compressai.registry.torch as registry_torch

    for name in dir(registry_torch):
        if not name.startswith("_"):
            setattr(registry, name, getattr(registry_torch, name))
    from compressai.models.google import FactorizedPrior

    return FactorizedPrior


def bmshj2018_factorized_transforms(n: int = 128, m: int = 192) -> tuple[nn.Module, nn.Module]:
    """``(g_a, g_s)`` of ``compressai.models.FactorizedPrior(N, M)`` in eval mode, random
    weights. Raises ``ImportError`` when CompressAI is not installed."""
    model = _factorized_prior_class()(n, m).eval()
    return model.g_a, model.g_s
