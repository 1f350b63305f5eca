"""What every concern of the store shares: the database, the upload folder and the clock."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from storage.db import Database
from storage.files import FileStore
from storage.records import Clock, as_utc

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreContext:
    """The one database and file store behind :class:`storage.store.Store`, handed to
    each of its concerns so they open their own short sessions on the same engine."""

    db: Database
    files: FileStore
    clock: Clock
    cache_hits_are_free: bool
    lyrics_max_age: timedelta = timedelta(hours=24)
    """How long a job's lyrics are kept: as long as its stems (``storage.lyrics``)."""

    def now(self, now: datetime | None = None) -> datetime:
        """``now`` if the caller gave one (tests move through the 24 h window), else the
        store's clock; timezone-aware in UTC either way."""
        return as_utc(now if now is not None else self.clock())

    async def delete_upload(self, path: Path) -> None:
        """Delete a finished job's upload; a failure is logged, never raised, because the
        job's outcome is already committed and retention removes orphans later."""
        try:
            await self.files.delete_upload(path)
        except OSError as exc:
            logger.warning("could not delete upload %s: %s", path, exc)
