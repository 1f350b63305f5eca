"""Retention: remove results past their time to live, orphaned uploads and temporaries.

Job records are never touched here; they stay (without audio) for statistics. Only
files go:

* a result folder not stored or looked up for ``ttl``;
* an upload no active job refers to, once it is older than ``grace`` (its job ended
  but the deletion failed, or the job was refused and nobody deleted it);
* hidden temporaries older than ``grace`` (a write interrupted by a crash).

``grace`` keeps the cleanup away from files that are being written or are about to be
claimed by a job being reserved.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiofiles.os

from storage.files import FileStore, is_result_key, is_temporary
from storage.records import CleanupReport

logger = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(hours=1)


async def remove_expired(
    files: FileStore,
    *,
    ttl: timedelta,
    now: datetime,
    keep_uploads: Collection[Path] = (),
    grace: timedelta = DEFAULT_GRACE,
) -> CleanupReport:
    """Delete what has outlived its time (see the module docstring); report the counts."""
    results_removed = temporaries_removed = uploads_removed = 0
    for shard in await _entries(files.results_dir):
        for entry in await _entries(shard):
            if is_temporary(entry.name):
                temporaries_removed += await _remove_if_older(entry, now - grace)
            elif not is_result_key(entry.name):
                logger.warning("leaving %s alone: not a result folder", entry)
            elif await _modified_before(entry, now - ttl):
                results_removed += await files.delete_results(entry.name)
    kept = {Path(path).name for path in keep_uploads if files.is_upload(path)}
    for entry in await _entries(files.uploads_dir):
        if is_temporary(entry.name):
            temporaries_removed += await _remove_if_older(entry, now - grace)
        elif entry.name not in kept:
            uploads_removed += await _remove_if_older(entry, now - grace)
    report = CleanupReport(
        results_removed=results_removed,
        uploads_removed=uploads_removed,
        temporaries_removed=temporaries_removed,
    )
    if report != CleanupReport():
        logger.info("cleanup removed %s", report)
    return report


async def run_periodically(action: Callable[[], Awaitable[object]], interval: timedelta) -> None:
    """Run ``action`` now and then every ``interval`` until cancelled.

    A failing run is logged and retried at the next interval: a full disk or a
    transient database error must not stop retention for good.
    """
    while True:
        try:
            await action()
        except Exception:
            logger.exception("periodic cleanup failed; retrying in %s", interval)
        await asyncio.sleep(interval.total_seconds())


async def _entries(folder: Path) -> list[Path]:
    try:
        return [folder / name for name in await aiofiles.os.listdir(folder)]
    except (FileNotFoundError, NotADirectoryError):
        return []


async def _modified_before(path: Path, moment: datetime) -> bool:
    try:
        modified = (await aiofiles.os.stat(path)).st_mtime
    except FileNotFoundError:
        return False
    return datetime.fromtimestamp(modified, UTC) < moment


async def _remove_if_older(path: Path, moment: datetime) -> bool:
    if not await _modified_before(path, moment):
        return False
    try:
        if await aiofiles.os.path.isdir(path):
            await _rmtree(path)
        else:
            await aiofiles.os.remove(path)
    except FileNotFoundError:
        return False
    return True


_rmtree = aiofiles.os.wrap(shutil.rmtree)
