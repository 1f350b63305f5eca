"""Fixtures for the worker pool: short real-music inputs and started pools."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from separation.model.batching import BatchRunner
from separation.model.loading import LoadedModel
from separation.pool import SeparationPool
from tests.support.pool import PoolFactory
from tests.support.pool import make_pool as make_pool_for_tests


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
        *, runner: BatchRunner | None = None, model: str = "tiny", **overrides: object
    ) -> SeparationPool:
        overrides = {
            "batch_size": 4,
            "max_running_jobs": 3,
            "progress_interval_seconds": 0.0,
            **overrides,
        }
        pool = make_pool_for_tests(
            ffmpeg=str(overrides.pop("ffmpeg", ffmpeg)),
            tmp_root=overrides.pop("tmp_root", tmp_path / "tmp"),
            cache_dir=overrides.pop("cache_dir", tmp_path / "cache"),
            model=model,
            repo=model_repo,
            loaded=loaded_models,
            runner=runner,
            **overrides,
        )
        await pool.start()
        pools.append(pool)
        return pool

    yield factory
    for pool in pools:
        await pool.shutdown(timeout=10)
