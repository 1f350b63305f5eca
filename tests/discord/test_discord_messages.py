"""Songs posted as ordinary messages: song channels, DMs and mentions, answered by replies."""

from __future__ import annotations

import pytest

from bot.chat.conversation.messages import DONE
from tests.support.discord_bot import (
    BOOSTED_CHANNEL,
    BOOSTED_GUILD_ID,
    DM_CHANNEL,
    GUILD_ID,
    OTHER_CHANNEL,
    SONG_CHANNEL,
)


def _replies_to(call, message: dict) -> bool:
    reference = call.payload.get("message_reference") or {}
    return str(reference.get("message_id")) == message["id"]


async def test_a_song_in_a_song_channel_gets_replies_and_the_files(discord_bot):
    song = discord_bot.post_song("clip.mp3")
    await discord_bot.wait_for_done()
    api = discord_bot.api
    texts = api.texts(SONG_CHANNEL)
    assert texts[0] == "Downloading your song..."
    assert texts[-1] == DONE
    first, delivery = api.calls_to("send")  # one progress message (edited), then the files
    assert _replies_to(first, song) and _replies_to(delivery, song)
    assert not first.payload["allowed_mentions"].get("replied_user")  # progress does not ping
    assert delivery.payload["allowed_mentions"].get("replied_user")  # the results do
    assert first.payload["allowed_mentions"]["parse"] == []  # never @everyone or roles
    assert delivery.file_names == ["clip (Instrumental).mp3", "clip (Vocals).mp3"]
    assert all(call.kind == "edit" for call in api.calls_to("edit", "edit_original"))
    assert await discord_bot.songs_used() == 1


@pytest.mark.parametrize(
    "where",
    [
        {"channel_id": DM_CHANNEL, "guild_id": None},
        {"channel_id": BOOSTED_CHANNEL, "guild_id": BOOSTED_GUILD_ID, "mention_bot": True},
    ],
    ids=["dm", "mention"],
)
async def test_dms_and_mentions_start_jobs_anywhere(discord_bot, where):
    discord_bot.post_song("clip.mp3", **where)
    await discord_bot.wait_for_done(channel_id=where["channel_id"])
    [delivery] = discord_bot.api.uploads(where["channel_id"])
    assert len(delivery.files) == 2


async def test_mentioning_the_bot_in_reply_to_a_song_uses_that_song(discord_bot):
    song = discord_bot.post_song("notes.mp3", channel_id=OTHER_CHANNEL)  # not for the bot
    await discord_bot.settle()
    assert discord_bot.api.calls_to("send", "download") == []
    request = discord_bot.post(channel_id=OTHER_CHANNEL, mention_bot=True, reply_to=song)
    await discord_bot.wait_for_text("doesn't look like audio", channel_id=OTHER_CHANNEL)
    [download] = discord_bot.api.calls_to("download")
    assert download.path.endswith(song["attachments"][0]["id"] + "/notes.mp3")
    assert all(_replies_to(call, request) for call in discord_bot.api.calls_to("send"))


async def test_servers_never_get_answers_they_did_not_ask_for(discord_bot):
    discord_bot.post_song("clip.mp3", channel_id=OTHER_CHANNEL)  # a song, not in a song channel
    discord_bot.post(channel_id=SONG_CHANNEL, content="nice song!")  # chatter in a song channel
    pdf = discord_bot.song_attachment("paper.pdf", content_type="application/pdf")
    discord_bot.post(channel_id=SONG_CHANNEL, attachments=[pdf])  # not a song
    await discord_bot.settle()
    assert [call.kind for call in discord_bot.api.calls_to("send", "download")] == []


async def test_other_bots_are_ignored(discord_bot):
    payload = discord_bot.api.message(
        channel_id=SONG_CHANNEL,
        author_id=777,
        guild_id=GUILD_ID,
        attachments=[discord_bot.song_attachment()],
    )
    payload["author"]["bot"] = True
    discord_bot.client._connection.parse_message_create(payload)
    await discord_bot.settle()
    assert discord_bot.api.calls_to("send", "download") == []


@pytest.mark.parametrize(
    "message, fragment",
    [
        ({"channel_id": DM_CHANNEL, "guild_id": None, "content": "hello"}, "Send me a song"),
        ({"channel_id": OTHER_CHANNEL, "mention_bot": True, "content": "hi"}, "Send me a song"),
        ({"channel_id": DM_CHANNEL, "guild_id": None, "pdf": True}, "doesn't look like a song"),
    ],
    ids=["dm-text", "mention-text", "dm-pdf"],
)
async def test_addressed_messages_without_a_song_get_one_hint(discord_bot, message, fragment):
    if message.pop("pdf", False):
        pdf = discord_bot.song_attachment("paper.pdf", content_type="application/pdf")
        message["attachments"] = [pdf]
    discord_bot.post(**message)
    await discord_bot.wait_for_text(fragment, channel_id=message["channel_id"])
    assert discord_bot.api.calls_to("download") == []


@pytest.mark.parametrize(
    "discord_bot", [{"settings": {"audio": {"max_input_bytes": 50_000}}}], indirect=True
)
async def test_declared_and_real_sizes_over_the_limit_are_both_refused(discord_bot):
    honest = discord_bot.song_attachment("clip.mp3")
    discord_bot.post_song(attachment=honest)
    await discord_bot.wait_for_text("too big")
    assert discord_bot.api.calls_to("download") == []  # refused from the declared size
    lying = discord_bot.song_attachment("clip.mp3", declared_size=2_000)
    discord_bot.post_song(attachment=lying)
    await discord_bot.api.wait_for(
        lambda api: sum("too big" in text for text in api.texts(SONG_CHANNEL)) == 2
    )
    assert len(discord_bot.api.calls_to("download")) == 1  # cut off while streaming
    assert await discord_bot.songs_used() == 0
    assert not list((discord_bot.settings.general.data_dir / "uploads").iterdir())


@pytest.mark.parametrize(
    "discord_bot",
    [{"settings": {"rate_limit": {"requests_per_minute": 1, "burst": 1}}}],
    indirect=True,
)
async def test_a_rate_limited_song_is_answered_in_reply_to_that_song(discord_bot):
    discord_bot.post(content="hello", mention_bot=True)
    await discord_bot.wait_for_text("Send me a song")
    dropped = discord_bot.post_song("clip.mp3")
    await discord_bot.wait_for_text("Slow down")
    notice = discord_bot.api.calls_to("send")[-1]
    assert notice.text.startswith("Slow down a little: try again in ")
    assert _replies_to(notice, dropped)
    assert discord_bot.api.calls_to("download") == []


@pytest.mark.parametrize(
    "discord_bot", [{"settings": {"quota": {"discord": {"songs_per_day": 1}}}}], indirect=True
)
async def test_an_over_quota_song_is_refused_at_once_without_downloading(discord_bot):
    discord_bot.post_song("clip.mp3")
    await discord_bot.wait_for_done()
    api = discord_bot.api
    downloads, before = len(api.calls_to("download")), len(api.texts(SONG_CHANNEL))
    song = discord_bot.post_song("clip.mp3")
    await discord_bot.wait_for_text("You've used today's songs")
    await discord_bot.settle()
    [refusal] = api.texts(SONG_CHANNEL)[before:]
    assert refusal.startswith("You've used today's songs. The next one frees up in ")
    assert _replies_to(api.calls_to("send")[-1], song)
    assert len(api.calls_to("download")) == downloads


async def test_file_names_with_invisible_characters_go_out_clean(discord_bot):
    """Issue 20: a right-to-left override and zero-width characters survived into the
    result's file names ('\u202e3pm (Instrumental).mp3')."""
    attachment = discord_bot.song_attachment(filename="\u202e3pm\u200b\u2066.mp3")
    discord_bot.post_song(attachment=attachment)
    await discord_bot.wait_for_done()
    [delivery] = [call for call in discord_bot.api.calls_to("send") if call.files]
    assert delivery.file_names == ["3pm (Instrumental).mp3", "3pm (Vocals).mp3"]
