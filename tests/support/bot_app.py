"""The backend of a whole bot in tests, built from its settings as ``karaoke-bot run``
builds it (either platform's harness, and the chat flow's tests, use it)."""

from __future__ import annotations

from typing import Any

from bot.process.backend import separation_options
from bot.process.wiring import audio_limits
from bot.settings import Settings
from separation.audio.ffmpeg import find_ffmpeg
from separation.pool import SeparationPool
from tests.support.pool import make_pool as make_pool_for_tests


def make_pool(settings: Settings, **config: Any) -> SeparationPool:
    """A pool (not started) with the model, limits and options ``settings`` give;
    ``config``: other ``PoolConfig`` fields (see :func:`tests.support.pool.make_pool`)."""
    return make_pool_for_tests(
        ffmpeg=find_ffmpeg(settings.general.ffmpeg_path),
        tmp_root=settings.tmp_dir,
        cache_dir=settings.general.data_dir / "cache",
        model=settings.model.name,
        repo=settings.model.repo,
        limits=audio_limits(settings),
        options=separation_options(settings),
        **config,
    )
