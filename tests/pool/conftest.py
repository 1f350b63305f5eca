"""Fixtures for the worker pool: short real-music inputs and started pools."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from separation.engine import run_batch
from separation.models import LoadedModel, load_model
from separation.pool import PoolConfig, SeparationPool

PoolFactory = Callable[..., Awaitable[SeparationPool]]


@pytest.fixture(scope="session")
def clips(
    tmp_path_factory: pytest.TempPathFactory, clip_path: Path, ffmpeg: str
) -> dict[int, Path]:
    """Excerpts of the real test clip, by length in seconds (different bytes each)."""
    folder = tmp_path_factory.mktemp("clips")
    made = {}
    for seconds, start in ((3, 0), (5, 4), (7, 10), (9, 2)):
        path = folder / f"clip-{seconds}s.flac"
        subprocess.run(
            [ffmpeg, "-hide_banner", "-loglevel", "error", "-ss", str(start), "-t", str(seconds),
             "-i", str(clip_path), "-y", str(path)],
            check=True,
        )  # fmt: skip
        made[seconds] = path
    return made


@pytest.fixture(scope="session")
def loaded_models() -> dict[tuple[str, str], LoadedModel]:
    """Models loaded once per test session, by (name, device), as a ModelCache would."""
    return {}


@pytest.fixture
async def make_pool(
    tmp_path: Path,
    model_repo: Path,
    ffmpeg: str,
    loaded_models: dict[tuple[str, str], LoadedModel],
) -> AsyncIterator[PoolFactory]:
    """``await make_pool(runner=..., model="tiny", **PoolConfig fields)``: a started pool."""
    pools: list[SeparationPool] = []

    async def factory(
        *, runner: Callable | None = None, model: str = "tiny", **overrides: object
    ) -> SeparationPool:
        config = PoolConfig(
            ffmpeg=ffmpeg,
            tmp_root=tmp_path / "tmp",
            cache_dir=tmp_path / "cache",
            batch_size=4,
            max_running_jobs=3,
            warm_up=False,
            progress_interval_seconds=0.0,
        )
        config = replace(config, **overrides)

        def loader(device: torch.device) -> LoadedModel:
            key = (model, str(device))
            if key not in loaded_models:
                loaded_models[key] = load_model(model, repo=model_repo, device=device)
            return loaded_models[key]

        pool = SeparationPool(config, loader, runner=runner or run_batch)
        await pool.start()
        pools.append(pool)
        return pool

    yield factory
    for pool in pools:
        await pool.shutdown(timeout=10)
