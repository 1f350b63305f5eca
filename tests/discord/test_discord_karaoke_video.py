"""The karaoke video on Discord, end to end: a real song separated by the tiny model, the
lyrics a user sends (in reply, with ``/karaoke``, with ``/video``), and the video that
comes back as an MP4 attachment under its buttons, through discord.py against the fake
API.

These need the chat flow's video entry points and the renderer (issue 24's other
branches); until they are there, the tests skip saying so. What the adapter alone does
is tested in ``test_discord_lyrics.py``.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

from bot.chat.conversation.controls import ControlState
from bot.chat.conversation.flow import ChatFlow
from tests.support.discord_bot import GUILD_ID, SONG_CHANNEL, USER_ID, DiscordHarness
from tests.support.media import decode_bytes

pytestmark = pytest.mark.skipif(
    not hasattr(ChatFlow, "lyrics_reply")
    or importlib.util.find_spec("separation.video.karaoke") is None,
    reason="needs the flow's lyrics_reply/video_command and separation.video.karaoke "
    "(issue 24's chat and renderer branches)",
)

LRC = b"[00:00.50]Hello <00:01.20>world\n[00:03.00]Second <00:04.00>line\n"
MIB = 2**20


def _lrc(bot: DiscordHarness, tmp_path: Path) -> dict:
    path = tmp_path / "clip.lrc"
    path.write_bytes(LRC)
    return bot.api.attachment(path, channel_id=SONG_CHANNEL, content_type=None)


def _videos(calls) -> list:
    return [call for call in calls if any(name.endswith(".mp4") for name in call.file_names)]


async def _video_after(bot: DiscordHarness, mark: int, within: float = 180):
    await bot.api.wait_for(lambda api: _videos(api.calls[mark:]), within)
    [video] = _videos(bot.api.calls[mark:])
    return video


def _assert_playable_video(video, ffmpeg: str, tmp_path: Path, seconds: float) -> None:
    """One MP4 within the 10 MiB of an ordinary server, H.264 with sound, as long as the
    song, under buttons that name its song."""
    [(name, content)] = video.files
    assert video.status == 200 and len(content) <= 10 * MIB
    probe = subprocess.run(
        [ffmpeg, "-hide_banner", "-i", str(_saved(tmp_path, name, content))],
        capture_output=True,
        text=True,
    )
    assert "Video: h264" in probe.stderr and "Audio:" in probe.stderr
    audio = decode_bytes(content, "video-" + name, ffmpeg, tmp_path)
    assert abs(audio.duration_seconds - seconds) < 0.1
    ids = [b["custom_id"] for row in video.message["components"] for b in row["components"]]
    assert ids and all(ControlState.decode(custom_id) for custom_id in ids)


def _saved(folder: Path, name: str, content: bytes) -> Path:
    path = folder / ("probe-" + name)
    path.write_bytes(content)
    return path


async def test_a_reply_with_an_lrc_file_gets_the_video(discord_bot, tmp_path, ffmpeg):
    bot = discord_bot
    bot.post_song()
    await bot.wait_for_done()
    [result] = bot.api.uploads(SONG_CHANNEL)
    mark = bot.mark()
    reply = bot.post(attachments=[_lrc(bot, tmp_path)], reply_to=result.message)
    video = await _video_after(bot, mark)
    assert video.kind == "send"
    assert video.payload["message_reference"]["message_id"] == int(reply["id"])
    _assert_playable_video(video, ffmpeg, tmp_path, 6.0)
    assert await bot.songs_used() == 1  # a video costs no song


async def test_a_key_press_on_the_video_answers_with_a_new_video(discord_bot, tmp_path, ffmpeg):
    bot = discord_bot
    bot.post_song()
    await bot.wait_for_done()
    [result] = bot.api.uploads(SONG_CHANNEL)
    mark = bot.mark()
    bot.post(attachments=[_lrc(bot, tmp_path)], reply_to=result.message)
    video = await _video_after(bot, mark)
    key_up = next(
        button["custom_id"]
        for row in video.message["components"]
        for button in row["components"]
        if button["label"] == "Key +1"
    )
    mark = bot.mark()
    bot.client._connection.parse_interaction_create(
        bot.api.press(
            video.message, key_up, user_id=USER_ID, channel_id=SONG_CHANNEL, guild_id=GUILD_ID
        )
    )
    _assert_playable_video(await _video_after(bot, mark), ffmpeg, tmp_path, 6.0)


async def test_karaoke_with_lyrics_then_video_uses_them(discord_bot, tmp_path, ffmpeg):
    bot = discord_bot
    song = bot.song_attachment()
    lrc = _lrc(bot, tmp_path)
    bot.slash(
        "karaoke",
        [
            {"name": "file", "type": 11, "value": song["id"]},
            {"name": "lyrics", "type": 11, "value": lrc["id"]},
        ],
        attachments=[song, lrc],
    )
    await bot.wait_for_done()
    mark = bot.mark()
    token = bot.slash("video")
    video = await _video_after(bot, mark)
    assert video.kind == "followup" and video.interaction_token == token
    _assert_playable_video(video, ffmpeg, tmp_path, 6.0)


async def test_video_with_text_for_the_latest_song(discord_bot, tmp_path, ffmpeg):
    bot = discord_bot
    bot.post_song()
    await bot.wait_for_done()
    mark = bot.mark()
    bot.slash("video", [{"name": "text", "type": 3, "value": LRC.decode()}])
    _assert_playable_video(await _video_after(bot, mark), ffmpeg, tmp_path, 6.0)
