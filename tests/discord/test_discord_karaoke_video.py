"""The karaoke video on Discord, end to end: a real song separated by the tiny model, the
lyrics a user sends (in reply, with ``/karaoke``, with ``/video``), and the video that
comes back as an MP4 attachment under its buttons, through discord.py against the fake
API.

What the adapter alone does (which message is lyrics for which song) is tested in
``test_discord_lyrics.py``; here the whole bot makes real videos.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot.chat.conversation import messages
from bot.chat.conversation.controls import ControlState
from separation.errors import LyricsInputError
from separation.lyrics.parse import clean_lyrics_text
from tests.support.discord_bot import (
    GUILD_ID,
    OTHER_USER_ID,
    SONG_CHANNEL,
    USER_ID,
    DiscordHarness,
    start_discord_app,
)
from tests.support.media import decode_bytes

LRC = b"[00:00.50]Hello <00:01.20>world\n[00:03.00]Second <00:04.00>line\n"
MIB = 2**20


def _lrc(bot: DiscordHarness, tmp_path: Path, content: bytes = LRC) -> dict:
    path = tmp_path / "clip.lrc"
    path.write_bytes(content)
    return bot.api.attachment(path, channel_id=SONG_CHANNEL, content_type=None)


def _press(bot: DiscordHarness, message: dict, label: str, user_id: int = USER_ID) -> int:
    """``user_id`` presses the button ``label`` under ``message`` (one the bot sent)."""
    custom_id = next(
        button["custom_id"]
        for row in message["components"]
        for button in row["components"]
        if button["label"] == label
    )
    mark = bot.mark()
    bot.client._connection.parse_interaction_create(
        bot.api.press(
            message, custom_id, user_id=user_id, channel_id=SONG_CHANNEL, guild_id=GUILD_ID
        )
    )
    return mark


async def _question_after(bot: DiscordHarness, mark: int, token: str):
    """The bot's question for the words, under one "Lyrics video" button naming the song
    of control token ``token``: what a user replies to."""

    def asked(api) -> list:
        return [c for c in api.calls[mark:] if c.message and messages.ASK_FOR_LYRICS in c.text]

    await bot.api.wait_for(asked)
    [question] = asked(bot.api)
    [[button]] = [row["components"] for row in question.message["components"]]
    assert button["label"] == messages.CONTROL_VIDEO
    assert ControlState.decode(button["custom_id"]).token == token
    assert ControlState.decode(button["custom_id"]).video
    return question


def _token(message: dict) -> str:
    [custom_id, *_] = [b["custom_id"] for row in message["components"] for b in row["components"]]
    return ControlState.decode(custom_id).token


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
    reply, video = await _song_then_lrc_reply(bot, tmp_path)
    assert video.kind == "send"
    assert video.payload["message_reference"]["message_id"] == int(reply["id"])
    _assert_playable_video(video, ffmpeg, tmp_path, 6.0)
    assert await bot.songs_used() == 1  # a video costs no song


async def test_a_key_press_on_the_video_answers_with_a_new_video(discord_bot, tmp_path, ffmpeg):
    bot = discord_bot
    _, video = await _song_then_lrc_reply(bot, tmp_path)
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
    await _karaoke_with_lyrics(bot, tmp_path)
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


async def test_the_video_button_without_words_asks_and_a_reply_to_the_question_works(
    discord_bot, tmp_path, ffmpeg
):
    bot = discord_bot
    result = await _delivered(bot)
    mark = _press(bot, result.message, messages.CONTROL_VIDEO)
    question = await _question_after(bot, mark, _token(result.message))
    assert question.kind == "send"  # in the channel, in reply to the pressed result
    assert question.payload["message_reference"]["message_id"] == int(result.message["id"])
    mark = bot.mark()
    bot.post(attachments=[_lrc(bot, tmp_path)], reply_to=question.message)
    _assert_playable_video(await _video_after(bot, mark), ffmpeg, tmp_path, 6.0)
    assert await bot.songs_used() == 1


async def test_video_without_words_asks_in_its_response_and_a_reply_to_it_works(
    discord_bot, tmp_path, ffmpeg
):
    bot = discord_bot
    result = await _delivered(bot)
    token = bot.slash("video")
    question = await _question_after(bot, bot.last_action, _token(result.message))
    assert question.kind == "followup" and question.interaction_token == token
    mark = bot.mark()
    bot.post(content=LRC.decode(), reply_to=question.message)  # pasted, not a file
    _assert_playable_video(await _video_after(bot, mark), ffmpeg, tmp_path, 6.0)


async def test_a_strangers_press_on_a_video_is_refused_only_to_them(discord_bot, tmp_path, ffmpeg):
    bot = discord_bot
    _, video = await _song_then_lrc_reply(bot, tmp_path)
    await bot.settle()
    mark = _press(bot, video.message, "Key +1", user_id=OTHER_USER_ID)
    await bot.wait_for_text(messages.CONTROL_UNKNOWN, since=mark)
    await bot.settle()
    [refusal] = [c for c in bot.api.calls[mark:] if c.text is not None]
    assert refusal.kind == "followup" and refusal.payload["flags"] & 64
    assert [c for c in bot.api.calls[mark:] if c.kind == "send" or c.files] == []


async def test_after_a_restart_the_video_button_makes_the_video_of_the_songs_lyrics(
    discord_bot, discord_api, tmp_path, ffmpeg
):
    """The words sent with ``/karaoke`` are kept with the job, the button names it."""
    bot = discord_bot
    await _karaoke_with_lyrics(bot, tmp_path)
    [result] = bot.api.calls_to("followup")
    await bot.app.stop(grace_seconds=5)
    bot.app = await start_discord_app(discord_api, bot.settings)
    mark = _press(bot, result.message, messages.CONTROL_VIDEO)
    _assert_playable_video(await _video_after(bot, mark), ffmpeg, tmp_path, 6.0)
    assert not [c for c in bot.api.calls[mark:] if messages.ASK_FOR_LYRICS in (c.text or "")]


async def test_karaoke_with_unusable_lyrics_is_refused_in_one_sentence_for_nothing(
    discord_bot, tmp_path
):
    bot = discord_bot
    song = bot.song_attachment()
    lrc = _lrc(bot, tmp_path, b"  \r\n\t\n")
    token = bot.slash(
        "karaoke",
        [
            {"name": "file", "type": 11, "value": song["id"]},
            {"name": "lyrics", "type": 11, "value": lrc["id"]},
        ],
        attachments=[song, lrc],
    )
    await bot.api.wait_for(lambda api: api.interaction_texts(token))
    await bot.settle()
    with pytest.raises(LyricsInputError) as refused:
        clean_lyrics_text(b"  \r\n\t\n")
    assert bot.api.interaction_texts(token) == [refused.value.user_message]
    downloads = [call.path for call in bot.api.calls_to("download")]
    assert downloads and all(lrc["id"] in path for path in downloads)  # never the song
    assert await bot.app.store.intake.pending() == [] and bot.api.uploads(SONG_CHANNEL) == []


async def _karaoke_with_lyrics(bot: DiscordHarness, tmp_path: Path) -> None:
    """``/karaoke file:<song> lyrics:<an .lrc>``, until the song is delivered."""
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


async def _delivered(bot: DiscordHarness):
    """A song posted in the song channel and delivered: its one result upload."""
    bot.post_song()
    await bot.wait_for_done()
    [result] = bot.api.uploads(SONG_CHANNEL)
    return result


async def _song_then_lrc_reply(bot: DiscordHarness, tmp_path: Path):
    """A song posted and delivered, then an .lrc sent in reply to its result: the reply
    as the fake API recorded it, and the video the bot answered with."""
    result = await _delivered(bot)
    mark = bot.mark()
    reply = bot.post(attachments=[_lrc(bot, tmp_path)], reply_to=result.message)
    return reply, await _video_after(bot, mark)
