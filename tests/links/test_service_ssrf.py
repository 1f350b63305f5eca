"""Server-side request forgery through the real guard: a link whose page, manifest or
redirect names an internal address is refused by ``LinkService`` (its egress proxy), and
a listener on that address sees zero connections (issue 25).

The link server listens on 127.0.0.2, the one address the test's ``allowed_networks``
allows; the internal listener is on 127.0.0.1, which stays internal. Both ports are
allowed, so only the address rule can refuse. Each test prints its time to refusal and
the bytes the link server sent (``pytest -s`` shows them).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.links.errors import LinkError
from bot.links.service import LinkService
from bot.settings.links import LinksSettings
from tests.support.hostile import ConnectionCounter, counting_listener
from tests.support.link_servers import LinkServer, page_with_audio, running_link_server

ALLOWED_HOST = "127.0.0.2"


@pytest.fixture
def internal() -> Iterator[ConnectionCounter]:
    with counting_listener() as listener:
        yield listener


@pytest.fixture
async def server() -> AsyncIterator[LinkServer]:
    async with running_link_server(ALLOWED_HOST) as running:
        yield running


async def _refused(
    server: LinkServer, internal: ConnectionCounter, url: str, dest: Path, *, generic: bool
) -> LinkError:
    settings = LinksSettings(
        generic_extractor=generic,
        allowed_networks=[f"{ALLOWED_HOST}/32"],
        allowed_ports=[server.port, internal.port],
    )
    async with LinkService(settings) as links:
        started = time.monotonic()
        with pytest.raises(LinkError) as refused:
            await links.fetch(url, dest, max_duration_seconds=600)
        seconds = time.monotonic() - started
    sent = sum(server.bytes_sent.values())
    print(f"\n{refused.value.kind}: refused in {seconds:.3f} s, {sent} bytes sent by the link "
          f"server, {internal.accepted} internal connections")  # fmt: skip
    return refused.value


async def test_a_page_whose_media_is_on_an_internal_address_is_refused(
    server: LinkServer, internal: ConnectionCounter, tmp_path: Path
) -> None:
    page = server.add_page("song", page_with_audio(internal.url("song.mp3")))
    refusal = await _refused(server, internal, page, tmp_path, generic=True)
    assert refusal.kind == "refused_address"
    assert server.requests["/page/song"] >= 1, "the allowed page itself was read"
    assert internal.accepted == 0


async def test_a_manifest_whose_fragments_are_internal_is_refused(
    server: LinkServer, internal: ConnectionCounter, tmp_path: Path
) -> None:
    fragments = "".join(f"#EXTINF:5.0,\n{internal.url(f'seg-{n}.ts')}\n" for n in range(3))
    manifest = f"#EXTM3U\n#EXT-X-TARGETDURATION:5\n{fragments}#EXT-X-ENDLIST\n"
    url = server.add_media("list.m3u8", manifest.encode(), "application/vnd.apple.mpegurl")
    refusal = await _refused(server, internal, url, tmp_path, generic=True)
    assert refusal.kind == "not_audio"  # a manifest's item is never downloaded
    assert server.requests["/media/list.m3u8"] >= 1, "the allowed manifest itself was read"
    assert internal.accepted == 0


async def test_a_page_whose_media_is_an_internal_manifest_is_refused(
    server: LinkServer, internal: ConnectionCounter, tmp_path: Path
) -> None:
    fragments = f"#EXTINF:5.0,\n{internal.url('seg-0.ts')}\n"
    manifest = f"#EXTM3U\n#EXT-X-TARGETDURATION:5\n{fragments}#EXT-X-ENDLIST\n"
    media = server.add_media("list.m3u8", manifest.encode(), "application/vnd.apple.mpegurl")
    page = server.add_page("hls", page_with_audio(media))
    refusal = await _refused(server, internal, page, tmp_path, generic=True)
    assert refusal.kind == "not_audio"  # a manifest's item is never downloaded
    assert internal.accepted == 0


async def test_a_direct_link_that_redirects_to_an_internal_address_is_refused(
    server: LinkServer, internal: ConnectionCounter, tmp_path: Path
) -> None:
    url = server.add_redirect("away", internal.url("song.mp3"))
    refusal = await _refused(server, internal, url, tmp_path, generic=False)
    assert refusal.kind == "refused_address"
    assert server.requests["/redirect/away.mp3"] == 1
    assert internal.accepted == 0
    assert not list(tmp_path.iterdir())  # noqa: ASYNC240 (a test's own folder)
