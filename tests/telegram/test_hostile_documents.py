"""A playlist sent as a Telegram document: refused, free, and nothing is opened."""

from __future__ import annotations

import pytest

from tests.support.hostile import counting_listener, playlist_of
from tests.support.telegram_bot import USER_ID

NOT_AUDIO = "doesn't look like audio"  # downloaded, then refused by the header check
NOT_A_SONG = "doesn't look like a song"  # refused by its type before downloading


@pytest.mark.parametrize(
    ("name", "mime_type", "remote", "answer"),
    [
        ("song.m3u8", "application/vnd.apple.mpegurl", False, NOT_A_SONG),
        ("song.m3u8", "audio/mpegurl", True, NOT_AUDIO),
        ("song.m3u", "audio/x-mpegurl", True, NOT_AUDIO),
        ("song.mp3", "audio/mpeg", False, NOT_AUDIO),  # a playlist that claims to be an MP3
    ],
)
async def test_a_playlist_document_is_refused_and_opens_nothing(
    telegram_bot, tmp_path, name, mime_type, remote, answer
):
    with counting_listener() as listener:
        server_file = telegram_bot.songs["clip.mp3"]
        playlist = playlist_of(
            tmp_path / name, server_file=server_file, listener=listener, remote=remote
        )
        telegram_bot.songs = {**telegram_bot.songs, name: playlist}  # the session's stay
        await telegram_bot.send_song(name, kind="document", mime_type=mime_type, file_name=name)
        await telegram_bot.wait_for_text(answer)
    assert listener.accepted == 0
    assert telegram_bot.audio_uploads(USER_ID) == []
    if answer == NOT_A_SONG:
        assert telegram_bot.api.calls_to("getFile") == []
    else:
        assert await telegram_bot.songs_used() == 0
    assert not list((telegram_bot.settings.general.data_dir / "uploads").iterdir())
