"""Lyrics sent on Discord, and the karaoke video sent back: what the adapter hands the
flow (``tests/support/video_flow.py`` records it) through real discord.py objects
against the fake API. The flow's side of the video is tested with the flow."""

from __future__ import annotations

import pytest

from bot.chat.conversation import messages
from bot.chat.conversation.controls import ControlState
from bot.chat.conversation.types import MAX_LYRICS_DOWNLOAD_BYTES
from separation.audio.render_options import RenderOptions
from tests.support.discord_bot import (
    DM_CHANNEL,
    OTHER_USER_ID,
    SONG_CHANNEL,
    USER_ID,
    DiscordHarness,
)
from tests.support.fake_discord_api import APP_ID, FakeDiscordApi
from tests.support.video_flow import ANSWER, record_video_flow

TOKEN = "Song_token_1"
LRC = b"[00:00.50]Hello <00:01.00>world\n[00:02.00]Second line\n"


def _custom_id(token: str = TOKEN) -> str:
    return ControlState(token, RenderOptions(key=-1)).encode()


def _lyrics_file(bot: DiscordHarness, tmp_path, content: bytes = LRC, **attachment):
    path = tmp_path / "song.lrc"
    path.write_bytes(content)
    return bot.api.attachment(path, channel_id=SONG_CHANNEL, content_type=None, **attachment)


def _downloads_since(bot: DiscordHarness, mark: int) -> list:
    return [c for c in bot.api.calls[mark:] if c.kind == "download"]


async def test_a_reply_with_an_lrc_file_is_lyrics_for_the_song_replied_to(discord_bot, tmp_path):
    bot = discord_bot
    recorder = record_video_flow(bot.app.flow)
    result = bot.api.bot_message(SONG_CHANNEL, custom_ids=[_custom_id()])
    mark = bot.mark()
    other = bot.api.attachment(
        bot.songs["paper.pdf"], channel_id=SONG_CHANNEL, content_type="application/pdf"
    )
    posted = bot.post(
        attachments=[other, _lyrics_file(bot, tmp_path)], content="here you go", reply_to=result
    )
    await bot.wait_for_text(ANSWER)
    [call] = recorder.calls
    assert (call.method, call.token, call.user.user_id) == ("lyrics_reply", TOKEN, str(USER_ID))
    assert (call.lyrics.content, call.lyrics.filename) == (LRC, "song.lrc")
    assert len(_downloads_since(bot, mark)) == 1  # only the lyrics file was read
    [answer] = [c for c in bot.api.calls[mark:] if c.text == ANSWER]
    assert answer.payload["message_reference"]["message_id"] == int(posted["id"])
    assert recorder.songs == []  # a reply with lyrics is no song


async def test_pasted_text_in_reply_is_lyrics_without_the_mention(discord_bot):
    bot = discord_bot
    recorder = record_video_flow(bot.app.flow)
    result = bot.api.bot_message(DM_CHANNEL, custom_ids=["zz:other", _custom_id()])
    bot.post(
        channel_id=DM_CHANNEL,
        guild_id=None,
        content="[00:01.00]First line\nSecond line",
        mention_bot=True,
        reply_to=result,
    )
    await bot.wait_for_text(ANSWER, DM_CHANNEL)
    [call] = recorder.calls
    assert call.token == TOKEN
    assert call.lyrics.content == "[00:01.00]First line\nSecond line"
    assert call.lyrics.filename is None
    assert f"<@{APP_ID}>" not in call.lyrics.content


async def test_a_reply_discord_sent_without_its_message_is_fetched_once(discord_bot):
    bot = discord_bot
    recorder = record_video_flow(bot.app.flow)
    result = bot.api.bot_message(SONG_CHANNEL, custom_ids=[_custom_id()])
    mark = bot.mark()
    bot.post(content="Some words", reply_to=result, send_replied=False)
    await bot.wait_for_text(ANSWER)
    assert [c.kind for c in bot.api.calls[mark:]].count("fetch") == 1
    assert [call.token for call in recorder.calls] == [TOKEN]


def _replies_ignored_cases(api: FakeDiscordApi) -> dict:
    stranger = FakeDiscordApi.user(OTHER_USER_ID, "bob")
    return {
        "someone else's message": api.bot_message(
            SONG_CHANNEL, custom_ids=[_custom_id()], author=stranger
        ),
        "a bot message without buttons": api.bot_message(SONG_CHANNEL, custom_ids=[]),
        "a bot message with forged data": api.bot_message(
            SONG_CHANNEL, custom_ids=["kc:1:0:100:-", "kc:../../etc:0:100:-"]
        ),
    }


@pytest.mark.parametrize(
    "case",
    ["someone else's message", "a bot message without buttons", "a bot message with forged data"],
)
async def test_a_reply_to_anything_else_is_not_lyrics(discord_bot, case):
    bot = discord_bot
    recorder = record_video_flow(bot.app.flow)
    replied = _replies_ignored_cases(bot.api)[case]
    mark = bot.mark()
    bot.post(content="[00:01.00]Words", reply_to=replied)
    await bot.settle()
    assert recorder.calls == []
    # A song channel: a text that is not a song gets no answer at all (as before).
    assert [c for c in bot.api.calls[mark:] if c.kind in ("send", "fetch")] == []


async def test_a_reply_with_a_song_is_still_a_song(discord_bot):
    bot = discord_bot
    recorder = record_video_flow(bot.app.flow)
    result = bot.api.bot_message(SONG_CHANNEL, custom_ids=[_custom_id()])
    bot.post_song(reply_to=result, content="[00:01.00]Not lyrics: a song comes with it")
    await bot.wait_for_done()
    assert recorder.calls == []
    assert len(recorder.songs) == 1 and recorder.songs[0].lyrics is None
    assert await bot.songs_used() == 1


@pytest.mark.parametrize("lying", [False, True], ids=["declared", "streamed"])
async def test_an_oversized_lyrics_file_is_refused_in_one_sentence(discord_bot, tmp_path, lying):
    bot = discord_bot
    recorder = record_video_flow(bot.app.flow)
    result = bot.api.bot_message(SONG_CHANNEL, custom_ids=[_custom_id()])
    huge = b"[00:01.00]la\n" * (MAX_LYRICS_DOWNLOAD_BYTES // 13 + 100)
    declared = 1_000 if lying else len(huge)
    mark = bot.mark()
    bot.post(
        attachments=[_lyrics_file(bot, tmp_path, huge, declared_size=declared)], reply_to=result
    )
    refusal = messages.lyrics_file_too_large(MAX_LYRICS_DOWNLOAD_BYTES)
    await bot.wait_for_text(refusal)
    await bot.settle()
    assert recorder.calls == []
    assert len(_downloads_since(bot, mark)) == (1 if lying else 0)
    [answer] = [c for c in bot.api.calls[mark:] if c.kind == "send"]
    assert answer.text == refusal and answer.payload["message_reference"]


async def test_commands_are_registered_with_their_lyrics_options(discord_bot):
    [sync] = discord_bot.api.calls_to("sync")
    commands = {command["name"]: command for command in sync.payload["commands"]}
    video = {option["name"]: option for option in commands["video"]["options"]}
    assert (video["lyrics"]["type"], video["text"]["type"]) == (11, 3)  # attachment, string
    assert not video["lyrics"]["required"] and not video["text"]["required"]
    assert video["text"]["max_length"] == 6000
    karaoke = {option["name"]: option for option in commands["karaoke"]["options"]}
    assert karaoke["lyrics"]["type"] == 11 and not karaoke["lyrics"]["required"]


async def test_video_sends_one_mp4_attachment_with_its_buttons(discord_bot):
    bot = discord_bot
    recorder = record_video_flow(bot.app.flow, video=bot.songs["clip.mp4"])
    token = bot.slash("video")
    await bot.api.wait_for(lambda api: api.calls_to("followup"))
    [call] = recorder.calls
    assert (call.method, call.token, call.lyrics) == ("video_command", None, None)
    assert bot.api.calls_to("respond")[0].payload["type"] == 5  # deferred: videos take a while
    [followup] = bot.api.calls_to("followup")
    assert followup.interaction_token == token
    assert followup.files == [("clip (Karaoke).mp4", bot.songs["clip.mp4"].read_bytes())]
    custom_ids = [
        b["custom_id"] for row in followup.message["components"] for b in row["components"]
    ]
    assert custom_ids and all(ControlState.decode(c).token == "LatestSong_1" for c in custom_ids)


@pytest.mark.parametrize("with_file", [True, False], ids=["file", "text"])
async def test_video_with_lyrics_gives_them_for_the_latest_song(discord_bot, tmp_path, with_file):
    bot = discord_bot
    recorder = record_video_flow(bot.app.flow)
    if with_file:
        lrc = _lyrics_file(bot, tmp_path)
        options = [{"name": "lyrics", "type": 11, "value": lrc["id"]}]
        bot.slash("video", options, attachments=[lrc])
    else:
        bot.slash("video", [{"name": "text", "type": 3, "value": "[00:01.00]Words"}])
    await bot.wait_for_text(ANSWER)
    [call] = recorder.calls
    assert call.method == "lyrics_for_latest"
    assert call.lyrics.content == (LRC if with_file else "[00:01.00]Words")


@pytest.mark.parametrize("kind", ["not lyrics", "too big"])
async def test_video_refuses_a_bad_lyrics_file_at_once(discord_bot, kind):
    bot = discord_bot
    recorder = record_video_flow(bot.app.flow)
    if kind == "not lyrics":
        bad = bot.api.attachment(
            bot.songs["paper.pdf"], channel_id=SONG_CHANNEL, content_type="application/pdf"
        )
        refusal = messages.NOT_A_LYRICS_FILE
    else:
        bad = bot.api.attachment(
            bot.songs["clip.mp3"], channel_id=SONG_CHANNEL, filename="big.lrc",
            declared_size=MAX_LYRICS_DOWNLOAD_BYTES + 1,
        )  # fmt: skip
        refusal = messages.lyrics_file_too_large(MAX_LYRICS_DOWNLOAD_BYTES)
    token = bot.slash(
        "video", [{"name": "lyrics", "type": 11, "value": bad["id"]}], attachments=[bad]
    )
    await bot.wait_for_text(refusal)
    [answer] = [c for c in bot.api.calls if c.interaction_token == token]
    assert answer.payload["type"] == 4 and answer.payload["data"]["flags"] == 64  # only them
    assert bot.api.calls_to("download") == [] and recorder.calls == []


async def test_karaoke_with_lyrics_hands_them_to_the_flow_with_the_song(discord_bot, tmp_path):
    bot = discord_bot
    recorder = record_video_flow(bot.app.flow)
    song = bot.song_attachment()
    lrc = _lyrics_file(bot, tmp_path)
    bot.slash(
        "karaoke",
        [
            {"name": "file", "type": 11, "value": song["id"]},
            {"name": "lyrics", "type": 11, "value": lrc["id"]},
        ],
        attachments=[song, lrc],
    )
    await bot.wait_for_done()
    [upload] = recorder.songs
    assert upload.lyrics is not None
    assert (upload.lyrics.content, upload.lyrics.filename) == (LRC, "song.lrc")
    assert await bot.songs_used() == 1


async def test_karaoke_with_a_lyrics_file_over_the_limit_is_refused_with_the_song(
    discord_bot, tmp_path
):
    bot = discord_bot
    recorder = record_video_flow(bot.app.flow)
    song = bot.song_attachment()
    lrc = _lyrics_file(bot, tmp_path, declared_size=MAX_LYRICS_DOWNLOAD_BYTES + 1)
    bot.slash(
        "karaoke",
        [
            {"name": "file", "type": 11, "value": song["id"]},
            {"name": "lyrics", "type": 11, "value": lrc["id"]},
        ],
        attachments=[song, lrc],
    )
    await bot.wait_for_text(messages.lyrics_file_too_large(MAX_LYRICS_DOWNLOAD_BYTES))
    await bot.settle()
    assert bot.api.calls_to("download") == []
    assert recorder.songs == []  # the song is not started without the lyrics it came with
