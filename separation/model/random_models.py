"""Randomly initialised Demucs models, saved where the real loaders look for weights.

Pretrained weights cannot be downloaded everywhere (CI, air-gapped servers), yet tests
and benchmarks must go through the same loading code as production. So this module
builds models with random weights — tiny ones for tests, the exact ``htdemucs``
architecture for speed figures (weights do not change cost) — and writes them either in
Demucs' ``--repo`` layout (``SIG.th`` + ``NAME.yaml``) or in the HuggingFace cache layout
that ``demucs.hf`` reads (``NAME.yaml`` + ``SIG.safetensors``).
"""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
import yaml
from torch import nn

FOUR_SOURCES = ["drums", "bass", "other", "vocals"]
SIX_SOURCES = ["drums", "bass", "other", "vocals", "guitar", "piano"]

# A model with HTDemucs' structure (both branches, a cross-transformer layer) that runs
# a 4-second segment in ~0.2 s on one CPU core.
TINY_HTDEMUCS_KWARGS: dict[str, Any] = {
    "channels": 4, "depth": 4, "dconv_comp": 2, "dconv_mode": 1, "t_layers": 1,
    "t_heads": 1, "bottom_channels": 0, "t_hidden_scale": 1.0, "segment": Fraction(4),
}  # fmt: skip
# The pretrained htdemucs architecture (about 41.98 M parameters).
HTDEMUCS_KWARGS: dict[str, Any] = {
    "dconv_mode": 3,
    "bottom_channels": 512,
    "segment": Fraction(39, 5),
}


def build_htdemucs(
    kwargs: dict[str, Any], sources: list[str] | None = None, seed: int = 0
) -> nn.Module:
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(seed)
    # Any to mypy: demucs' untyped @capture_init wraps the constructor.
    model: nn.Module = HTDemucs(sources=list(sources or FOUR_SOURCES), **kwargs)
    return model.eval()


@runtime_checkable
class _CapturedInit(Protocol):
    """A model built through demucs' ``@capture_init``, which records its arguments."""

    _init_args_kwargs: tuple[tuple[Any, ...], dict[str, Any]]


def _package(model: nn.Module) -> dict[str, Any]:
    if not isinstance(model, _CapturedInit):
        raise TypeError(f"{type(model).__name__} does not record its constructor arguments")
    args, kwargs = model._init_args_kwargs
    return {
        "klass": type(model),
        "args": args,
        "kwargs": kwargs,
        "state": {key: value.clone() for key, value in model.state_dict().items()},
    }


def save_repo_model(
    folder: Path, name: str, models: list[nn.Module], weights: list[list[float]] | None = None
) -> list[str]:
    """Write ``models`` as a bag ``name`` in Demucs' ``--repo`` layout; returns signatures."""
    folder.mkdir(parents=True, exist_ok=True)
    signatures = []
    for index, model in enumerate(models):
        signature = hashlib.sha256(f"{name}-{index}".encode()).hexdigest()[:8]
        torch.save(_package(model), folder / f"{signature}.th")
        signatures.append(signature)
    bag: dict[str, Any] = {"models": signatures}
    if weights is not None:
        bag["weights"] = weights
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(bag), encoding="utf-8")
    return signatures


def _encode_json(value: Any) -> Any:
    if isinstance(value, Fraction):
        return {"_type": "fraction", "numerator": value.numerator, "denominator": value.denominator}
    if isinstance(value, dict):
        return {key: _encode_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encode_json(item) for item in value]
    return value


def save_hub_cache_model(
    cache_dir: Path, name: str, models: list[nn.Module], weights: list[list[float]] | None = None
) -> Path:
    """Write ``name`` into a HuggingFace hub cache at ``cache_dir`` (as HF_HUB_CACHE).

    Mirrors the layout ``huggingface_hub`` creates (``models--NS--REPO/snapshots/REV``
    with ``refs/main``) and the safetensors metadata ``demucs.hf`` expects.
    """
    from demucs.hf import DEFAULT_NAMESPACE, hf_repo_name
    from safetensors.torch import save_file

    revision = "0" * 40
    root = cache_dir / f"models--{DEFAULT_NAMESPACE}--{hf_repo_name(name)}"
    snapshot = root / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    (root / "refs").mkdir(exist_ok=True)
    (root / "refs" / "main").write_text(revision, encoding="utf-8")
    signatures = []
    for index, model in enumerate(models):
        signature = hashlib.sha256(f"{name}-{index}".encode()).hexdigest()[:8]
        package = _package(model)
        klass = package["klass"]
        metadata = {
            "klass": f"{klass.__module__}.{klass.__name__}",
            "args": json.dumps(_encode_json(list(package["args"]))),
            "kwargs": json.dumps(_encode_json(package["kwargs"])),
        }
        state = {key: value.contiguous() for key, value in package["state"].items()}
        save_file(state, str(snapshot / f"{signature}.safetensors"), metadata=metadata)
        signatures.append(signature)
    bag: dict[str, Any] = {"models": signatures}
    if weights is not None:
        bag["weights"] = weights
    (snapshot / f"{name}.yaml").write_text(yaml.safe_dump(bag), encoding="utf-8")
    return snapshot
