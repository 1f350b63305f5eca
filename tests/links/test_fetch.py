"""LinkFetcher: the way chosen for a link, and the cache-by-source key it names."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.links.errors import LinkError
from bot.links.fetch import LinkFetcher, source_key
from bot.settings.links import LinksSettings
from tests.support.link_servers import page_with_audio, running_link_server
from tests.support.media import make_tone

LOCAL = LinksSettings(allowed_networks=["127.0.0.0/8"], max_bytes=5_000_000)


@pytest.fixture
async def server(tmp_path: Path, ffmpeg: str):
    song = make_tone(tmp_path / "song.mp3", ffmpeg, seconds=2).read_bytes()
    async with running_link_server() as running:
        running.add_media("song.mp3", song)
        # A link that looks like a file and answers with a page embedding the song.
        running.add_page("track.mp3", page_with_audio("/media/song.mp3"))
        yield running


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    folder = tmp_path / "job"
    folder.mkdir()
    return folder


async def test_a_direct_link_is_keyed_by_its_final_url(server, dest):
    fetched = await LinkFetcher(LOCAL, None).fetch(
        server.url("/hop/2.mp3"), dest, max_duration_seconds=900
    )
    assert fetched.path.read_bytes() == server.media["song.mp3"][0]
    assert fetched.source_key == "url:" + server.url("/media/song.mp3")
    assert fetched.site == "127.0.0.1" and fetched.sha256


async def test_a_file_link_that_is_a_page_goes_to_the_generic_extractor_when_allowed(server, dest):
    settings = LOCAL.model_copy(update={"generic_extractor": True})
    fetched = await LinkFetcher(settings, None).fetch(
        server.url("/page/track.mp3"), dest, max_duration_seconds=900
    )
    assert fetched.path.read_bytes() == server.media["song.mp3"][0]
    assert fetched.source_key.startswith("site:")


async def test_a_file_link_that_is_a_page_is_refused_without_the_generic_extractor(server, dest):
    with pytest.raises(LinkError) as refused:
        await LinkFetcher(LOCAL, None).fetch(
            server.url("/page/track.mp3"), dest, max_duration_seconds=900
        )
    assert refused.value.kind == "not_audio"
    assert server.media_requests() == 0


async def test_links_turned_off_fetch_nothing(server, dest):
    settings = LOCAL.model_copy(update={"enabled": False})
    with pytest.raises(LinkError) as refused:
        await LinkFetcher(settings, None).fetch(
            server.url("/media/song.mp3"), dest, max_duration_seconds=900
        )
    assert refused.value.kind == "unsupported_site"
    assert sum(server.requests.values()) == 0


def test_source_keys_name_the_item_whatever_the_url():
    assert source_key(extractor="SoundCloud", item_id="123") == "site:soundcloud:123"
    assert source_key(final_url="https://a.example/s.mp3") == "url:https://a.example/s.mp3"
    with pytest.raises(ValueError):
        source_key()


async def test_the_same_site_item_twice_is_downloaded_once(server, tmp_path):
    """The cache by source: the second link (another spelling of the same page) is
    known by its extractor and item id before any media is fetched."""
    settings = LOCAL.model_copy(update={"generic_extractor": True})
    fetcher = LinkFetcher(settings, None)
    have: set[str] = set()

    async def already_have(key: str) -> bool:
        return key in have

    first_dest, second_dest = tmp_path / "first", tmp_path / "second"
    first_dest.mkdir()
    second_dest.mkdir()
    first = await fetcher.fetch(
        server.url("/page/track.mp3"), first_dest, max_duration_seconds=900,
        already_have=already_have,
    )  # fmt: skip
    assert first.path is not None
    have.add(first.source_key)
    second = await fetcher.fetch(
        server.url("/page/track.mp3?ref=share"), second_dest, max_duration_seconds=900,
        already_have=already_have,
    )  # fmt: skip
    assert second.path is None
    assert second.source_key == first.source_key
    assert server.requests["/media/song.mp3"] == 1
