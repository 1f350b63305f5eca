"""``store.quotas``: what a user has left, and whether their next song is refused."""

from __future__ import annotations

from datetime import datetime

import storage.quotas as quotas
import storage.users as users
from storage.errors import QuotaRefusedError
from storage.records import QuotaLimits, QuotaStatus, UserRecord
from storage.store.context import StoreContext


class Quotas:
    """The rolling 24 h quotas, read outside a reservation (which checks them again,
    atomically, in :meth:`storage.store.jobs.Jobs.reserve`)."""

    def __init__(self, context: StoreContext) -> None:
        self._context = context

    async def status(
        self, user: UserRecord, limits: QuotaLimits, *, now: datetime | None = None
    ) -> QuotaStatus:
        """What the user has used and has left in the rolling 24 h window ending ``now``.

        ``limits`` are the platform defaults; the user's overrides are applied here.
        """
        status, _ = await self._read(user, limits, now)
        return status

    async def refusal(
        self,
        user: UserRecord,
        limits: QuotaLimits,
        *,
        seconds: float | None = None,
        now: datetime | None = None,
    ) -> QuotaRefusedError | None:
        """Why the user's song of ``seconds`` (None: not downloaded yet, length unknown)
        would be refused now, or None; the order and the "frees at" times are those of
        :func:`storage.quotas.refusal`, which the reservation applies too.

        Nothing is reserved: a song that passes here may still be refused when its job
        is reserved (its length, or another song of the user's, got there first).
        """
        status, charges = await self._read(user, limits, now)
        return quotas.refusal(user, status, charges, seconds)

    async def _read(
        self, user: UserRecord, limits: QuotaLimits, now: datetime | None
    ) -> tuple[QuotaStatus, list[quotas.Charge]]:
        async with self._context.db.read() as session:
            row = await users.load(session, user)
            charges = await quotas.load_charges(session, row.id, self._context.now(now))
            active = await quotas.count_active_jobs(session, row.id)
            status = quotas.summarize(row, quotas.effective_limits(limits, row), charges, active)
            return status, charges
