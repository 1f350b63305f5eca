"""Direct file links, against honest and hostile servers on 127.0.0.1 (no proxy yet).

Each hostile server is bounded by a byte cap, a wall-clock limit or a redirect count;
the tests assert the refusal's kind and what was kept on disk, never a timing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bot.links.direct import PageInsteadOfMedia, download_direct
from bot.links.errors import LinkError
from tests.support.link_servers import LinkServer, page_with_audio, running_link_server
from tests.support.media import make_tone

CAP = 2_000_000


@pytest.fixture
async def server(tmp_path: Path, ffmpeg: str):
    song = make_tone(tmp_path / "song.mp3", ffmpeg, seconds=2).read_bytes()
    async with running_link_server() as running:
        running.add_media("song.mp3", song)
        yield running


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    folder = tmp_path / "private"
    folder.mkdir()
    return folder


async def _download(server: LinkServer, path: str, dest: Path, **limits: float) -> object:
    options = {"max_bytes": CAP, "timeout_seconds": 10.0, "max_redirects": 5, **limits}
    return await download_direct(
        server.url(path),
        dest,
        proxy_url=None,
        max_bytes=int(options["max_bytes"]),
        timeout_seconds=options["timeout_seconds"],
        max_redirects=int(options["max_redirects"]),
    )


async def _refusal(server: LinkServer, path: str, dest: Path, **limits: float) -> LinkError:
    with pytest.raises(LinkError) as refused:
        await _download(server, path, dest, **limits)
    assert not (dest / "direct-download").exists(), "nothing is kept of a refused download"
    return refused.value


async def test_a_direct_link_to_a_song_is_downloaded_under_a_fixed_name(server, dest):
    downloaded = await _download(server, "/media/song.mp3", dest)
    content = server.media["song.mp3"][0]
    assert downloaded.path == dest / "direct-download"
    assert downloaded.path.read_bytes() == content
    assert downloaded.sha256 == hashlib.sha256(content).hexdigest()
    assert downloaded.final_url == server.url("/media/song.mp3")
    assert downloaded.content_type == "audio/mpeg"


async def test_a_length_that_lies_low_is_all_that_is_read(server, dest):
    downloaded = await _download(server, "/lying.mp3", dest)
    assert downloaded.size_bytes == 1000
    assert downloaded.path.stat().st_size == 1000


async def test_an_advertised_length_over_the_cap_is_refused_before_the_body(server, dest):
    refusal = await _refusal(server, "/huge.mp3", dest)
    assert refusal.kind == "too_big" and "advertised" in refusal.detail


async def test_no_length_and_no_end_is_cut_at_the_cap(server, dest):
    refusal = await _refusal(server, "/endless.mp3", dest)
    assert refusal.kind == "too_big" and "sent" in refusal.detail


async def test_a_server_that_trickles_is_cut_by_the_wall_clock_limit(server, dest):
    refusal = await _refusal(server, "/slow.mp3", dest, timeout_seconds=1.0)
    assert refusal.kind == "timeout"


async def test_redirects_are_followed_up_to_the_limit(server, dest):
    downloaded = await _download(server, "/hop/3.mp3", dest)
    assert downloaded.final_url == server.url("/media/song.mp3")
    assert server.requests["/hop/0.mp3"] == 1


async def test_twenty_redirects_are_refused(server, dest):
    refusal = await _refusal(server, "/hop/20.mp3", dest)
    assert refusal.kind == "bad_link"
    assert server.requests["/media/song.mp3"] == 0
    assert sum(n for path, n in server.requests.items() if path.startswith("/hop/")) == 6


async def test_a_web_page_is_handed_back_as_a_page(server, dest):
    page = server.add_page("p", page_with_audio("/media/song.mp3"))
    with pytest.raises(PageInsteadOfMedia) as refused:
        await download_direct(
            page, dest, proxy_url=None, max_bytes=CAP, timeout_seconds=5, max_redirects=0
        )
    assert refused.value.kind == "not_audio" and refused.value.final_url == page


async def test_a_content_type_that_is_not_media_is_refused(server, dest):
    server.add_media("notes.mp3", b"plain text", content_type="text/plain")
    refusal = await _refusal(server, "/media/notes.mp3", dest)
    assert refusal.kind == "not_audio"


async def test_a_manifest_is_not_a_media_file(server, dest):
    refusal = await _refusal(server, "/live.m3u8", dest)
    assert refusal.kind == "not_audio"
    assert server.requests["/media/segment-7.ts"] == 0


async def test_a_missing_file_is_unreachable(server, dest):
    refusal = await _refusal(server, "/media/absent.mp3", dest)
    assert refusal.kind == "unreachable"
