"""A playlist attached on Discord (song channel or /karaoke): refused, free, opens nothing."""

from __future__ import annotations

import pytest

from tests.support.discord_bot import SONG_CHANNEL
from tests.support.hostile import counting_listener, playlist_of


@pytest.mark.parametrize(
    ("name", "content_type", "remote", "how"),
    [
        ("song.m3u8", "audio/x-mpegurl", False, "channel"),
        ("song.m3u", None, True, "channel"),  # no type: the name's extension says audio
        ("song.mp3", "audio/mpeg", False, "slash"),  # a playlist that claims to be an MP3
    ],
)
async def test_a_playlist_attachment_is_refused_and_opens_nothing(
    discord_bot, tmp_path, name, content_type, remote, how
):
    with counting_listener() as listener:
        server_file = discord_bot.songs["clip.mp3"]
        playlist = playlist_of(
            tmp_path / name, server_file=server_file, listener=listener, remote=remote
        )
        attachment = discord_bot.api.attachment(
            playlist, channel_id=SONG_CHANNEL, filename=name, content_type=content_type
        )
        if how == "channel":
            discord_bot.post_song(attachment=attachment)
        else:
            discord_bot.karaoke(attachment=attachment)
        await discord_bot.wait_for_text("doesn't look like audio")
    assert listener.accepted == 0
    assert discord_bot.api.calls_to("followup") == []
    assert await discord_bot.songs_used() == 0
    assert not list((discord_bot.settings.general.data_dir / "uploads").iterdir())
