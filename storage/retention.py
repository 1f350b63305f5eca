"""Retention: remove orphaned uploads and interrupted writes.

Job records are never touched here; they stay (without audio) for statistics. Results
are not kept by the store at all (the separation result cache bounds them by size and
age). Only files go:

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

from storage.files import FileStore, is_temporary
from storage.records import CleanupReport

logger = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(hours=1)


async def remove_expired(
    files: FileStore,
    *,
    now: datetime,
    keep_uploads: Collection[Path] = (),
    grace: timedelta = DEFAULT_GRACE,
) -> CleanupReport:
    """Delete what has outlived its time (see the module docstring); report the counts."""
    temporaries_removed = uploads_removed = 0
    kept = {Path(path).name for path in keep_uploads if files.is_upload(path)}
    for entry in await _entries(files.uploads_dir):
        if is_temporary(entry.name):
            temporaries_removed += await _remove_if_older(entry, now - grace)
        elif entry.name not in kept:
            uploads_removed += await _remove_if_older(entry, now - grace)
    report = CleanupReport(
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
