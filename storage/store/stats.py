"""The store's statistics for operators (``karaoke-bot stats``, ``/admin stats``)."""

from __future__ import annotations

from datetime import datetime

import storage.stats as stats
from storage.records import Stats
from storage.store.context import StoreContext


class Statistics:
    """Jobs per status, audio hours processed, cache hit rate and the top users."""

    def __init__(self, context: StoreContext) -> None:
        self._db = context.db

    async def collect(self, *, top: int = 5, since: datetime | None = None) -> Stats:
        """The numbers for the jobs created at or after ``since`` (all when None), with
        the ``top`` users by songs done."""
        async with self._db.read() as session:
            return await stats.collect(session, top=top, since=since)
