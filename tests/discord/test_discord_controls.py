"""Karaoke controls on Discord: buttons under the instrumental re-render it from the kept
stems through discord.py's persistent dynamic items; the model never runs again, a
stranger's press is refused, and a press after a restart still works."""

from __future__ import annotations

from typing import Any

import pytest

from bot.chat.conversation import messages
from tests.support.discord_bot import (
    GUILD_ID,
    OTHER_USER_ID,
    SONG_CHANNEL,
    USER_ID,
    DiscordHarness,
    start_discord_app,
)
from tests.support.pool import CountingRunner

RUNNER = CountingRunner()
MINUS = "\N{MINUS SIGN}"


def _buttons(message: dict[str, Any]) -> dict[str, str]:
    """Label -> custom id of every button under ``message``."""
    return {
        button["label"]: button["custom_id"]
        for row in message["components"]
        for button in row["components"]
    }


async def _press(bot: DiscordHarness, upload, label: str, *, user_id: int = USER_ID) -> int:
    assert upload.message is not None
    return _press_data(bot, upload, _buttons(upload.message)[label], user_id=user_id)


def _press_data(bot: DiscordHarness, upload, custom_id: str, *, user_id: int = USER_ID) -> int:
    """A press of a button with ``custom_id`` under ``upload``'s message, as if that
    message carried it (Discord only sends presses of buttons a message has: a button of
    an older version of the bot, say)."""
    mark = bot.mark()
    bot.last_action = mark
    button = {"type": 2, "style": 2, "label": "Faster", "custom_id": custom_id}
    message = {**upload.message, "components": [{"type": 1, "components": [button]}]}
    payload = bot.api.press(
        message, custom_id, user_id=user_id, channel_id=SONG_CHANNEL, guild_id=GUILD_ID
    )
    bot.client._connection.parse_interaction_create(payload)
    return mark


def _acknowledged(bot: DiscordHarness, mark: int) -> bool:
    return any(c.kind == "respond" and c.payload["type"] == 6 for c in bot.api.calls[mark:])


async def _uploads_after(bot: DiscordHarness, mark: int, count: int = 1) -> list:
    await bot.api.wait_for(
        lambda api: len([c for c in api.uploads(SONG_CHANNEL) if c in api.calls[mark:]]) >= count
    )
    return [c for c in bot.api.uploads(SONG_CHANNEL) if c in bot.api.calls[mark:]]


def _file_names(upload) -> list[str]:
    return [name for name, _ in upload.files]


@pytest.mark.parametrize("discord_bot", [{"pool": {"runner": RUNNER}}], indirect=True)
async def test_buttons_re_render_and_refuse_strangers(discord_bot):
    bot = discord_bot
    bot.post_song()
    await bot.wait_for_done()
    [result] = bot.api.uploads(SONG_CHANNEL)
    assert set(_buttons(result.message)) == {
        f"Key {MINUS}1",
        "Key +1",
        "Slower",
        "Faster",
        "Guide vocal on",
        "\N{CLAPPER BOARD} Lyrics video",
    }
    forward_passes = len(RUNNER.batches)

    mark = await _press(bot, result, f"Key {MINUS}1")
    [lower] = await _uploads_after(bot, mark)
    responses = [c for c in bot.api.calls[mark:] if c.kind == "respond"]
    assert responses and responses[0].payload["type"] == 6  # acknowledged, nothing shown
    # "Changing it..." at once, edited into what changed just before the files.
    sent, edited = [c for c in bot.api.calls[mark:] if c.text is not None][:2]
    assert sent.kind == "send" and sent.text.endswith(messages.CONTROL_RENDERING)
    assert edited.kind == "edit" and edited.text.endswith(f"Here it is, {MINUS}1 key:")
    assert bot.api.calls.index(edited) < bot.api.calls.index(lower)
    assert _file_names(lower) == [
        f"clip (Instrumental, {MINUS}1 key).mp3",
        f"clip (Vocals, {MINUS}1 key).mp3",
    ]
    mark = await _press(bot, lower, "Slower")
    [slower] = await _uploads_after(bot, mark)
    assert _file_names(slower)[0] == f"clip (Instrumental, {MINUS}1 key, 95%).mp3"
    assert len(RUNNER.batches) == forward_passes
    assert await bot.songs_used() == 1

    mark = await _press(bot, slower, "Key +1", user_id=OTHER_USER_ID)
    await bot.wait_for_text(messages.CONTROL_UNKNOWN, since=mark)
    await bot.settle()
    # Refused with an ephemeral followup only the stranger sees (flag 64, issue 23), and
    # nothing at all posted in the channel: no refusal, no files.
    [refusal] = [c for c in bot.api.calls[mark:] if c.text is not None]
    assert refusal.kind == "followup" and refusal.payload["flags"] & 64
    assert refusal.text == messages.CONTROL_UNKNOWN  # no mention: nobody else is told
    assert [c for c in bot.api.calls[mark:] if c.kind == "send"] == []
    assert await _uploads_after(bot, mark, 0) == []


async def test_a_press_after_a_restart_works(discord_bot, discord_api):
    bot = discord_bot
    bot.post_song()
    await bot.wait_for_done()
    [result] = bot.api.uploads(SONG_CHANNEL)
    await bot.app.stop(grace_seconds=5)
    bot.app = await start_discord_app(discord_api, bot.settings)
    mark = await _press(bot, result, "Guide vocal on")
    [guided] = await _uploads_after(bot, mark)
    # The guide is in the instrumental only: the vocals say nothing was done to them.
    assert _file_names(guided) == [
        f"clip (Instrumental, guide vocal {MINUS}12 dB).mp3",
        "clip (Vocals).mp3",
    ]
    assert "Guide vocal off" in _buttons(guided.message)


async def test_karaoke_options_shape_the_first_render(discord_bot):
    bot = discord_bot
    attachment = bot.song_attachment()
    token = bot.slash(
        "karaoke",
        [
            {"name": "file", "type": 11, "value": attachment["id"]},
            {"name": "key", "type": 4, "value": -2},
            {"name": "tempo", "type": 10, "value": 0.9},
        ],
        attachments=[attachment],
    )
    await bot.wait_for_done()
    [followup] = bot.api.calls_to("followup")
    assert followup.interaction_token == token
    assert _file_names(followup) == [
        f"clip (Instrumental, {MINUS}2 keys, 90%).mp3",
        f"clip (Vocals, {MINUS}2 keys, 90%).mp3",
    ]
    mark = await _press(bot, followup, f"Key {MINUS}1")
    [lower] = await _uploads_after(bot, mark)
    assert _file_names(lower)[0] == f"clip (Instrumental, {MINUS}3 keys, 90%).mp3"
    assert await bot.songs_used() == 1


async def test_every_press_is_acknowledged_and_forged_ones_are_answered_alike(discord_bot):
    """Issue 20: an unknown custom id was never acknowledged ("This interaction failed"),
    and old buttons named the job by its sequential id."""
    bot = discord_bot
    bot.post_song()
    await bot.wait_for_done()
    [result] = bot.api.uploads(SONG_CHANNEL)
    own = _buttons(result.message)["Faster"]
    token = own.split(":")[1]
    assert len(token) == 12

    mark = _press_data(bot, result, "zz:not-ours")
    await bot.api.wait_for(lambda api: _acknowledged(bot, mark))
    mark = bot.mark()  # an id the message does not carry: discord.py drops it unanswered
    bot.client._connection.parse_interaction_create(
        bot.api.press(
            result.message, "kc:1:0:100:-", user_id=USER_ID, channel_id=SONG_CHANNEL,
            guild_id=GUILD_ID,
        )
    )  # fmt: skip
    await bot.api.wait_for(lambda api: _acknowledged(bot, mark))
    for custom_id, answer in [
        ("kc:1:0:105:-", messages.CONTROL_BROKEN),  # a button from before control tokens
        ("kc:9223372036854775808:0:100:-", messages.CONTROL_BROKEN),
        (own.replace(token, "A" * 12), messages.CONTROL_UNKNOWN),  # no such song
    ]:
        mark = _press_data(bot, result, custom_id)
        await bot.wait_for_text(answer, since=mark)
        assert _acknowledged(bot, mark)
    await bot.settle()
    assert len(bot.api.uploads(SONG_CHANNEL)) == 1


@pytest.mark.parametrize("discord_bot", [{"pool": {"runner": RUNNER}}], indirect=True)
async def test_karaoke_in_another_format_of_a_song_separated_is_no_forward_pass(discord_bot):
    """``/karaoke format:flac`` of a song sent before as MP3: encoded from its kept
    stems (issue 23), with buttons that work."""
    bot = discord_bot
    bot.karaoke()
    await bot.wait_for_done()
    forward_passes = len(RUNNER.batches)
    mark = bot.mark()
    bot.karaoke(output_format="flac")
    await bot.wait_for_done(since=mark)
    [flac] = [c for c in bot.api.uploads(SONG_CHANNEL) if c in bot.api.calls[mark:]]
    assert _file_names(flac) == ["clip (Instrumental).flac", "clip (Vocals).flac"]
    assert len(RUNNER.batches) == forward_passes
    mark = await _press(bot, flac, f"Key {MINUS}1")
    [lower] = await _uploads_after(bot, mark)
    assert _file_names(lower) == [
        f"clip (Instrumental, {MINUS}1 key).flac",
        f"clip (Vocals, {MINUS}1 key).flac",
    ]
    assert len(RUNNER.batches) == forward_passes
