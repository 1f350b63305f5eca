"""Songs sent as links on Telegram, through python-telegram-bot against the fake Bot API
and a local link server (``tests/support/link_servers.py``): the link's song goes the
way of an upload, its refusals come before anything is fetched, and the egress guard
keeps a default bot off 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.link_servers import (
    LinkServer,
    page_with_audio,
    page_with_video_object,
    running_link_server,
)
from tests.support.media import decode_bytes
from tests.support.telegram_bot import USER_ID, TelegramHarness, running_telegram_bot


@pytest.fixture
async def server(telegram_songs) -> AsyncIterator[LinkServer]:
    async with running_link_server() as running:
        running.add_media("clip.mp3", telegram_songs["clip.mp3"].read_bytes())
        yield running


def _local_links(server: LinkServer, **more: object) -> dict[str, dict[str, object]]:
    """Settings that let links reach the local server (and only its port)."""
    links = {"allowed_networks": ["127.0.0.0/8"], "allowed_ports": [server.port], **more}
    return {"links": links}


@pytest.fixture
async def bot(request, tmp_path, model_repo, telegram_songs, server) -> AsyncIterator:
    """A bot whose links may reach the local server; ``request.param``: more ``[links]``."""
    more = getattr(request, "param", {}) or {}
    async with running_telegram_bot(
        tmp_path, model_repo, telegram_songs, settings=_local_links(server, **more)
    ) as harness:
        yield harness


async def _done_uploads(bot: TelegramHarness, mark: int) -> list:
    await bot.wait_for_done(since=mark)
    return await bot.uploads_after(mark, 2)


async def test_a_link_to_a_song_gets_the_two_files(bot, server, ffmpeg, tmp_path):
    mark = bot.mark()
    await bot.send(text=server.url("/media/clip.mp3"))
    uploads = await _done_uploads(bot, mark)
    assert bot.api.texts_in_chat(USER_ID, since=mark)[0] == "Downloading your song..."
    source = decode_bytes(server.media["clip.mp3"][0], "source.mp3", ffmpeg, tmp_path)
    for index, call in enumerate(uploads):
        result = decode_bytes(call.files["audio"][1], f"out{index}.mp3", ffmpeg, tmp_path)
        assert abs(result.duration_seconds - source.duration_seconds) < 0.05
    assert server.requests["/media/clip.mp3"] == 1
    uploads = bot.settings.general.data_dir / "uploads"
    kept = [path.name for path in uploads.iterdir()]  # no private folder left, no upload
    assert len(kept) == 1 and kept[0].startswith("source-")  # the cache by source


async def test_the_quota_is_charged_once_by_the_decoded_length(bot, server, ffmpeg, tmp_path):
    await bot.send(text=f"/karaoke {server.url('/media/clip.mp3')}")
    await bot.wait_for_done()
    user = await bot.app.store.users.get("telegram", str(USER_ID))
    status = await bot.app.store.quotas.status(user, bot.app.flow.config.quota_limits("telegram"))
    decoded = decode_bytes(server.media["clip.mp3"][0], "s.mp3", ffmpeg, tmp_path)
    assert status.songs_used == 1
    assert status.audio_minutes_used * 60 == pytest.approx(decoded.duration_seconds, abs=0.1)


async def _send_and_check_hit(bot: TelegramHarness, text: str) -> bool | None:
    """Send ``text``, wait for its files; whether the song was a result-cache hit."""
    mark = bot.mark()
    await bot.send(text=text)
    await _done_uploads(bot, mark)
    user = await bot.app.store.users.get("telegram", str(USER_ID))
    latest = await bot.app.store.jobs.latest_done(user)
    assert latest is not None
    return latest.cache_hit


async def test_the_same_link_twice_is_downloaded_and_separated_once(bot, server):
    """The second time the link's kept upload is read instead (the cache by source),
    and its content hash finds the separated song in the result cache."""
    link = server.url("/media/clip.mp3")
    hits = [await _send_and_check_hit(bot, link) for _ in range(2)]
    assert hits == [False, True]
    assert server.requests["/media/clip.mp3"] == 1


@pytest.mark.parametrize("bot", [{"generic_extractor": True}], indirect=True)
async def test_a_site_item_twice_is_downloaded_once(bot, server):
    """Known by its extractor and item id once its page is read, before its media (the
    generic extractor's item id holds the page's query, so the same spelling here)."""
    page = server.add_page("song", page_with_audio("/media/clip.mp3", title="A song"))
    hits = [await _send_and_check_hit(bot, page) for _ in range(2)]
    assert hits == [False, True]
    assert server.requests["/media/clip.mp3"] == 1
    assert server.requests["/page/song"] == 2


@pytest.mark.parametrize("bot", [{"generic_extractor": True}], indirect=True)
async def test_a_song_too_long_by_its_page_is_refused_before_its_media(bot, server):
    page = page_with_video_object(server.url("/media/clip.mp3"), duration="PT6H")
    await bot.send(text=server.add_page("six-hours", page))
    await bot.wait_for_text("longer than you can separate now")
    await bot.settle()
    assert server.media_requests() == 0
    assert bot.audio_uploads() == []


async def test_links_to_the_host_are_refused_with_default_settings(
    tmp_path, model_repo, telegram_songs, server
):
    """Default ``[links]``: public addresses only. The local server sees no request."""
    async with running_telegram_bot(tmp_path, model_repo, telegram_songs) as bot:
        await bot.send(text=server.url("/media/clip.mp3"))
        await bot.wait_for_text("I couldn't reach 127.0.0.1")
        await bot.settle()
        assert sum(server.requests.values()) == 0
        assert bot.audio_uploads() == []


@pytest.mark.parametrize("bot", [{"enabled": False}], indirect=True)
async def test_links_turned_off_are_answered_in_one_sentence(bot, server):
    await bot.send(text=server.url("/media/clip.mp3"))
    await bot.wait_for_text("Links are turned off here")
    await bot.settle()
    assert sum(server.requests.values()) == 0
    assert bot.api.texts_in_chat(USER_ID) == ["Links are turned off here; send the file instead."]


@pytest.mark.parametrize(
    "text, answer",
    [
        ("ftp://127.0.0.1/clip.mp3", "doesn't look like a link I can open"),
        ("just words", "Send me a song"),  # not a link: the hint, as before links
    ],
)
async def test_texts_that_are_not_songs(bot, server, text, answer):
    await bot.send(text=text)
    await bot.wait_for_text(answer)
    await bot.settle()
    assert sum(server.requests.values()) == 0
    assert all("ftp://" not in said for said in bot.api.texts_in_chat(USER_ID))


async def test_a_link_to_a_file_bigger_than_an_upload_may_be_is_cut_while_it_downloads(
    tmp_path, model_repo, telegram_songs, server
):
    song_bytes = len(server.media["clip.mp3"][0])
    settings = {**_local_links(server), "audio": {"max_input_bytes": song_bytes // 2}}
    async with running_telegram_bot(tmp_path, model_repo, telegram_songs, settings=settings) as bot:
        await bot.send(text=server.url("/media/clip.mp3"))
        await bot.wait_for_text("bigger than I can download")
        await bot.settle()
        assert server.requests["/media/clip.mp3"] == 1
        assert bot.audio_uploads() == []
        assert list((bot.settings.general.data_dir / "uploads").iterdir()) == []
