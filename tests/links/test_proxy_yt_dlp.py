"""yt-dlp, the other client pointed at the egress proxy, speaks to it as httpx does:
both of its HTTP handlers (requests, and urllib with the
``prefer-legacy-http-handler`` compatibility option) send their requests through it, get
allowed ones, and are refused internal ones with zero connections to the listener.

Skipped where yt-dlp is not installed yet (it is issue 25's new dependency).
"""

from __future__ import annotations

import asyncio
from ipaddress import ip_network

import pytest

from bot.links.egress import EgressPolicy
from bot.links.proxy import EgressProxy
from tests.support.egress import listening

yt_dlp = pytest.importorskip("yt_dlp")
HANDLERS = ("Requests", "Urllib")


def _fetch(proxy_url: str, handler: str, url: str) -> str:
    """``url`` through yt-dlp, preferring ``handler``: the body, or the error."""
    legacy = ["prefer-legacy-http-handler"] if handler == "Urllib" else []
    options = {"proxy": proxy_url, "quiet": True, "no_warnings": True, "compat_opts": legacy}
    with yt_dlp.YoutubeDL(options) as downloader:
        try:
            return str(downloader.urlopen(url).read().decode())
        except yt_dlp.networking.exceptions.RequestError as error:
            return f"error: {error}"


@pytest.mark.parametrize("handler", HANDLERS)
async def test_yt_dlp_fetches_an_allowed_target_through_the_proxy(handler: str) -> None:
    async with listening("127.0.0.1") as server:
        policy = EgressPolicy((ip_network("127.0.0.1/32"),), frozenset({server.port}))
        async with EgressProxy(policy, connect_timeout=2, idle_timeout=2) as proxy:
            url = f"http://127.0.0.1:{server.port}/watch?v=1"
            body = await asyncio.to_thread(_fetch, proxy.url, handler, url)
    assert body == "ok"
    assert server.paths == ["/watch?v=1"]


@pytest.mark.parametrize("handler", HANDLERS)
async def test_yt_dlp_is_refused_internal_targets_with_no_connection(handler: str) -> None:
    async with listening("127.0.0.1") as v4, listening("::1", v4.port) as v6:
        policy = EgressPolicy(allowed_ports=frozenset({v4.port, 443}))
        async with EgressProxy(policy, connect_timeout=2, idle_timeout=2) as proxy:
            answers = [
                await asyncio.to_thread(_fetch, proxy.url, handler, url)
                for url in (
                    f"http://localhost:{v4.port}/",
                    f"http://[::1]:{v4.port}/",
                    f"http://2130706433:{v4.port}/",
                    "https://169.254.169.254/latest/meta-data/",
                )
            ]
    assert all(answer.startswith("error: ") and "403" in answer for answer in answers), answers
    assert v4.connections + v6.connections == 0
    assert len(proxy.refusals) == 4
