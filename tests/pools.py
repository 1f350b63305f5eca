"""Building a worker pool for tests: one helper for the pool tests and the bot harnesses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from separation.model.batching import BatchRunner
from separation.model.engine import run_batch
from separation.model.loading import LoadedModel, load_model
from separation.pool import PoolConfig, SeparationPool

LoadedModels = dict[tuple[str, str], LoadedModel]
"""Models already loaded, by (name, device), as a ``ModelCache`` would keep them."""


def make_pool(
    *,
    ffmpeg: str,
    tmp_root: Path,
    cache_dir: Path,
    model: str,
    repo: Path | None,
    loaded: LoadedModels | None = None,
    runner: BatchRunner | None = None,
    **config: Any,
) -> SeparationPool:
    """A pool (not started) running ``model`` from ``repo``; ``config``: other
    ``PoolConfig`` fields (no warm-up unless ``warm_up=True``). With ``loaded``, each
    model is loaded once and shared between pools."""
    config.setdefault("warm_up", False)
    pool_config = PoolConfig(ffmpeg=ffmpeg, tmp_root=tmp_root, cache_dir=cache_dir, **config)

    def loader(device: torch.device) -> LoadedModel:
        if loaded is None:
            return load_model(model, repo=repo, device=device)
        key = (model, str(device))
        if key not in loaded:
            loaded[key] = load_model(model, repo=repo, device=device)
        return loaded[key]

    return SeparationPool(pool_config, loader, runner=runner or run_batch)
