"""Links at run time: the one egress proxy of a process and the fetcher pointed at it.

The bot and ``karaoke-bot separate URL`` both start a :class:`LinkService` and ask it
for links; neither builds a proxy or a fetcher itself, so no connection for a link can
be made except through the guard (``bot.links.proxy``).

A refusal by the proxy reaches the fetcher as an ordinary failed request (a 403 from the
proxy reads like a server's 403), so after a failure the service looks at the refusals
the proxy recorded during that fetch: any there makes the failure ``refused_address``,
which the user is told as "not reachable" and the operator finds in the log with its
reason. (Two fetches at once may see each other's refusals: the worst that does is
name a failure "not reachable" that was one anyway.)
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType
from typing import Self

from bot.links.egress import EgressPolicy
from bot.links.errors import LinkError
from bot.links.fetch import FetchedLink, LinkFetcher, SourceCheck
from bot.links.proxy import EgressProxy
from bot.settings.links import LinksSettings

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10.0
"""Resolving a name, and again connecting to its checked address."""
IDLE_TIMEOUT_SECONDS = 30.0
"""A tunnel or request that moves no byte for this long is closed."""


class LinkService:
    """``async with LinkService(settings) as links: await links.fetch(...)``."""

    def __init__(self, settings: LinksSettings) -> None:
        self._settings = settings
        self._proxy = EgressProxy(
            EgressPolicy(allowed_networks=settings.networks(), allowed_ports=settings.ports()),
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            idle_timeout=IDLE_TIMEOUT_SECONDS,
        )
        self._fetcher: LinkFetcher | None = None

    @property
    def enabled(self) -> bool:
        return self._settings.enabled

    async def __aenter__(self) -> Self:
        await self._proxy.__aenter__()
        self._fetcher = LinkFetcher(self._settings, self._proxy.url)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._fetcher = None
        await self._proxy.__aexit__(exc_type, exc, traceback)

    async def fetch(
        self,
        url: str,
        dest: Path,
        *,
        max_duration_seconds: float,
        already_have: SourceCheck | None = None,
    ) -> FetchedLink:
        """``LinkFetcher.fetch`` through this process's proxy.

        Raises:
            LinkError: the refusal, by kind; ``refused_address`` when the proxy refused a
                connection this fetch tried (an internal address, a port not allowed).
            RuntimeError: the service is not started.
        """
        if self._fetcher is None:
            raise RuntimeError("the link service is not started")
        before = len(self._proxy.refusals)
        try:
            return await self._fetcher.fetch(
                url, dest, max_duration_seconds=max_duration_seconds, already_have=already_have
            )
        except LinkError as error:
            refused = self._proxy.refusals[before:]
            if refused and error.kind in ("unreachable", "not_audio", "bad_link"):
                logger.warning(
                    "link refused by the egress guard: %s",
                    ", ".join(f"{r.host}:{r.port} ({r.reason})" for r in refused),
                )
                raise LinkError(
                    "refused_address", site=error.site, detail=refused[-1].reason
                ) from error
            raise
