"""Keeping the disk in check: cache eviction and sweeping abandoned job folders.

Each commit makes room for itself (``separation.cache.results``); the cache is evicted again
after every stored result (entries pinned at that commit may be delivered by now) and,
with the job folders that a killed process left behind, on a timer (even when nothing
new is stored: expired entries go, and ``/metrics`` gets a fresh measurement). One
eviction runs at a time; a failure is logged and retried at the next sweep.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from separation.cache.results import ResultCache
from separation.model.offload import run_blocking
from separation.workdir import sweep_abandoned

logger = logging.getLogger(__name__)


class CacheSweeper:
    def __init__(self, cache: ResultCache, tmp_root: Path, interval_seconds: float) -> None:
        self._cache = cache
        self._tmp_root = tmp_root
        self._interval = interval_seconds
        self._evicting = False

    async def evict(self) -> None:
        """Remove expired or surplus cache entries (skipped while one eviction runs)."""
        if self._evicting:
            return
        self._evicting = True
        try:
            await run_blocking(None, self._cache.evict)
        except OSError:
            logger.exception("cache eviction failed")
        finally:
            self._evicting = False

    async def sweep_periodically(self) -> None:
        while True:
            await self.evict()
            try:  # folders a killed process left (another one may share tmp_root)
                await run_blocking(None, sweep_abandoned, self._tmp_root)
            except OSError:
                logger.exception("sweeping job folders failed")
            await asyncio.sleep(self._interval)
