"""The link service: one egress proxy per process, every fetch through it, and a
refusal by the proxy named as such (issue 25)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.links.errors import LinkError
from bot.links.service import LinkService
from bot.settings.links import LinksSettings
from tests.support.link_servers import running_link_server

SONG = b"ID3" + b"\0" * 4096


async def test_a_direct_link_comes_through_the_guard_when_its_network_is_allowed(
    tmp_path: Path,
) -> None:
    async with running_link_server() as server:
        settings = LinksSettings(
            allowed_networks=["127.0.0.0/8"], allowed_ports=[80, 443, server.port]
        )
        url = server.add_media("song.mp3", SONG)
        async with LinkService(settings) as links:
            fetched = await links.fetch(url, tmp_path, max_duration_seconds=600)
    assert fetched.path is not None
    assert fetched.path.read_bytes() == SONG
    assert server.requests["/media/song.mp3"] == 1


async def test_an_internal_address_is_refused_by_the_guard_with_no_connection(
    tmp_path: Path,
) -> None:
    async with running_link_server() as server:
        url = server.add_media("song.mp3", SONG)
        # The default settings: no network allowed beyond the public internet, ports 80
        # and 443 only; 127.0.0.1 is loopback on any port.
        async with LinkService(LinksSettings(allowed_ports=[80, 443, server.port])) as links:
            with pytest.raises(LinkError) as refused:
                await links.fetch(url, tmp_path, max_duration_seconds=600)
    assert refused.value.kind == "refused_address"
    assert sum(server.requests.values()) == 0
    assert not [path for path in tmp_path.iterdir()]  # noqa: ASYNC240 (a test's own folder)


async def test_fetching_needs_a_started_service(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        await LinkService(LinksSettings()).fetch(
            "https://example.com/a.mp3", tmp_path, max_duration_seconds=60
        )
