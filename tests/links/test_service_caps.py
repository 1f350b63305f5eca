"""The direct-download caps still hold through the egress guard: the hostile servers of
``test_direct.py`` (a lying length, no end, a trickle, twenty redirects), fetched by
``LinkService`` with the loopback network allowed, so every byte goes through the proxy.

Each test prints its time to refusal and the bytes the server sent (``pytest -s``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.links.errors import LinkError
from bot.links.fetch import FetchedLink
from bot.links.service import LinkService
from bot.settings.links import LinksSettings
from tests.support.link_servers import LinkServer, running_link_server

CAP = 2_000_000


@pytest.fixture
async def server() -> AsyncIterator[LinkServer]:
    async with running_link_server() as running:
        running.add_media("song.mp3", b"ID3" + b"\0" * 4096)
        yield running


async def _fetch(server: LinkServer, path: str, dest: Path, **limits: float) -> FetchedLink:
    settings = LinksSettings(
        allowed_networks=["127.0.0.0/8"],
        allowed_ports=[server.port],
        max_bytes=CAP,
        max_redirects=5,
        **limits,
    )
    async with LinkService(settings) as links:
        started = time.monotonic()
        try:
            return await links.fetch(server.url(path), dest, max_duration_seconds=600)
        finally:
            seconds = time.monotonic() - started
            sent = sum(server.bytes_sent.values())
            print(f"\n{path}: {seconds:.3f} s, {sent} bytes sent by the server")


async def _refusal(server: LinkServer, path: str, dest: Path, **limits: float) -> LinkError:
    with pytest.raises(LinkError) as refused:
        await _fetch(server, path, dest, **limits)
    assert not list(dest.iterdir()), "nothing is kept of a refused download"  # noqa: ASYNC240
    return refused.value


async def test_a_length_that_lies_low_is_all_that_is_read(server, tmp_path):
    fetched = await _fetch(server, "/lying.mp3", tmp_path)
    assert fetched.path is not None and fetched.path.stat().st_size == 1000


async def test_no_length_and_no_end_is_cut_at_the_cap(server, tmp_path):
    refusal = await _refusal(server, "/endless.mp3", tmp_path)
    assert refusal.kind == "too_big"
    # The socket buffers of both hops fill ahead of the reader (about 10 MB measured):
    # a bound far short of the server's own 1.3 GB.
    assert server.bytes_sent["/endless.mp3"] < 25 * CAP


async def test_a_server_that_trickles_is_cut_by_the_wall_clock_limit(server, tmp_path):
    refusal = await _refusal(server, "/slow.mp3", tmp_path, download_timeout_seconds=1.0)
    assert refusal.kind == "timeout"


async def test_twenty_redirects_are_refused(server, tmp_path):
    refusal = await _refusal(server, "/hop/20.mp3", tmp_path)
    assert refusal.kind == "bad_link"
    assert server.requests["/media/song.mp3"] == 0
    assert sum(n for path, n in server.requests.items() if path.startswith("/hop/")) == 6
