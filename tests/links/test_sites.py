"""Site links through yt-dlp in its sandboxed child, against pages on 127.0.0.1.

The generic extractor reads local pages (allowed here as the operator may allow it);
every refusal that the metadata decides is asserted to have fetched no media at all
(the server counts every request that is not a page).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.links.errors import LinkError
from bot.links.sites import SiteRequest, fetch_site
from bot.settings.links import LinksSettings
from tests.support.link_servers import (
    page_with_audio,
    page_with_video_object,
    running_link_server,
)
from tests.support.media import make_tone

GENERIC = LinksSettings(generic_extractor=True).extractors()


@pytest.fixture
async def server(tmp_path: Path, ffmpeg: str):
    song = make_tone(tmp_path / "song.mp3", ffmpeg, seconds=2).read_bytes()
    async with running_link_server() as running:
        running.add_media("song.mp3", song)
        yield running


def _request(url: str, dest: Path, extractors: tuple[str, ...] = GENERIC) -> SiteRequest:
    dest.mkdir(exist_ok=True)
    return SiteRequest(
        url=url,
        site="127.0.0.1",
        dest=dest,
        proxy_url=None,
        extractors=extractors,
        max_bytes=5_000_000,
        max_duration_seconds=900.0,
        metadata_timeout_seconds=30.0,
        download_timeout_seconds=30.0,
    )


async def _refusal(request: SiteRequest) -> LinkError:
    with pytest.raises(LinkError) as refused:
        await fetch_site(request)
    return refused.value


async def test_the_generic_extractor_fetches_a_page_s_embedded_song(server, tmp_path):
    page = server.add_page("song", page_with_audio("/media/song.mp3", title="Local song"))
    media = await fetch_site(_request(page, tmp_path / "job"))
    assert media.path.read_bytes() == server.media["song.mp3"][0]
    assert media.path.parent == tmp_path / "job"
    assert media.extractor and media.item_id
    assert media.title is not None and "Local song" in media.title


async def test_without_the_generic_extractor_a_page_is_not_a_supported_site(server, tmp_path):
    page = server.add_page("song", page_with_audio("/media/song.mp3"))
    refusal = await _refusal(_request(page, tmp_path / "job", LinksSettings().extractors()))
    assert refusal.kind == "unsupported_site"
    assert server.media_requests() == 0


async def test_an_extractor_outside_the_allow_list_is_refused(server, tmp_path):
    # A YouTube link with only SoundCloud allowed: refused before any connection.
    request = _request("https://www.youtube.com/watch?v=dQw4w9WgXcQ", tmp_path / "job")
    refusal = await _refusal(SiteRequest(**{**request.__dict__, "extractors": ("soundcloud",)}))
    assert refusal.kind == "unsupported_site"


async def test_a_playlist_page_is_refused_without_fetching_its_items(server, tmp_path):
    server.add_media("other.mp3", server.media["song.mp3"][0])
    page = server.add_page("list", page_with_audio("/media/song.mp3", "/media/other.mp3"))
    refusal = await _refusal(_request(page, tmp_path / "job"))
    assert refusal.kind == "playlist"
    assert server.media_requests() == 0


async def test_a_live_hls_stream_is_refused_without_fetching_a_segment(server, tmp_path):
    refusal = await _refusal(_request(server.url("/live.m3u8"), tmp_path / "job"))
    assert refusal.kind == "live"
    assert server.requests["/media/segment-7.ts"] == 0


async def test_six_hours_by_metadata_is_refused_before_any_media_byte(server, tmp_path):
    server.add_media("long.mp3", b"\0" * 1000)
    page = server.add_page(
        "long", page_with_video_object(server.url("/media/long.mp3"), duration="PT6H")
    )
    refusal = await _refusal(_request(page, tmp_path / "job"))
    assert refusal.kind == "too_long"
    assert server.media_requests() == 0
    assert not [path for path in (tmp_path / "job").iterdir() if path.name.startswith("site-media")]


async def test_a_trickling_media_file_is_killed_at_the_download_deadline(server, tmp_path):
    request = _request(server.url("/slow.mp3"), tmp_path / "job")
    refusal = await _refusal(SiteRequest(**{**request.__dict__, "download_timeout_seconds": 3.0}))
    assert refusal.kind == "timeout"


async def test_an_endless_media_file_is_stopped_at_the_file_size_limit(server, tmp_path):
    refusal = await _refusal(_request(server.url("/endless.mp3"), tmp_path / "job"))
    assert refusal.kind == "too_big"
    assert not [path for path in (tmp_path / "job").iterdir() if path.name.startswith("site-media")]


async def test_a_page_that_never_ends_is_stopped_by_the_memory_limit(server, tmp_path):
    refusal = await _refusal(_request(server.url("/endless.html"), tmp_path / "job"))
    assert refusal.kind == "too_big" and "MemoryError" in refusal.detail
    # Stopped by the child's limit, long before the server's own bound of 1.3 GB.
    assert server.bytes_sent["/endless.html"] < 400_000_000
