"""Karaoke videos as Discord attachments: alone in their message under their buttons,
within the channel's upload limit, and Discord's 413 for one over it (as the fake API
answers it, like the real one) explained as a typed error."""

from __future__ import annotations

from pathlib import Path

import discord
import pytest

from bot.chat.conversation.controls import ControlState, buttons
from bot.chat.conversation.types import OutgoingFile
from bot.chat.discord.replies import (
    ChannelReplier,
    DiscordUploadTooLargeError,
    group_files,
    upload_plan,
)
from separation.audio.render_options import RenderOptions
from tests.support.discord_bot import BOOSTED_CHANNEL, SONG_CHANNEL

MIB = 2**20
CONTROLS = buttons(ControlState("Video_token1", RenderOptions()))


def _file(folder: Path, name: str, size: int, *, is_video: bool = False) -> OutgoingFile:
    path = folder / name
    with path.open("wb") as out:
        out.truncate(size)  # sparse: the size is what counts here
    return OutgoingFile(
        path, name, name, controls=CONTROLS if is_video else None, is_video=is_video
    )


def test_a_video_goes_alone_in_its_message(tmp_path):
    files = [
        _file(tmp_path, "a.mp3", 1000),
        _file(tmp_path, "karaoke.mp4", 1000, is_video=True),
        _file(tmp_path, "b.mp3", 1000),
        _file(tmp_path, "c.mp3", 1000),
    ]
    groups = group_files(files, upload_plan(10 * MIB), min_bitrate=96)
    assert [[f.filename for f in group] for group in groups] == [
        ["a.mp3"],
        ["karaoke.mp4"],
        ["b.mp3", "c.mp3"],
    ]


async def test_a_video_is_sent_as_an_mp4_attachment_with_its_buttons(discord_bot, tmp_path):
    bot = discord_bot
    channel = bot.client.get_channel(BOOSTED_CHANNEL)  # a server of 50 MiB uploads
    video = _file(tmp_path, "clip (Karaoke).mp4", 20 * MIB, is_video=True)
    replier = ChannelReplier(channel, upload_plan(channel.guild.filesize_limit), min_bitrate=96)
    await replier.send_files([video])
    [sent] = bot.api.uploads(BOOSTED_CHANNEL)
    assert sent.file_names == ["clip (Karaoke).mp4"] and len(sent.files[0][1]) == 20 * MIB
    ids = [b["custom_id"] for row in sent.message["components"] for b in row["components"]]
    assert ids == [button.data for row in CONTROLS for button in row]


@pytest.mark.parametrize("size", [10 * MIB + 1, 12 * MIB])
async def test_discord_refuses_a_video_over_the_limit_with_a_413(discord_bot, tmp_path, size):
    """The plan thought 50 MiB (a server that lost its boost since): Discord's 413,
    code 40005, becomes the typed error the flow explains."""
    bot = discord_bot
    channel = bot.client.get_channel(SONG_CHANNEL)
    replier = ChannelReplier(channel, upload_plan(50 * MIB), min_bitrate=96)
    with pytest.raises(DiscordUploadTooLargeError) as refused:
        await replier.send_files([_file(tmp_path, "clip (Karaoke).mp4", size, is_video=True)])
    assert isinstance(refused.value.__cause__, discord.HTTPException)
    assert (refused.value.__cause__.status, refused.value.__cause__.code) == (413, 40005)
    assert refused.value.budget_bytes == 50 * MIB
    [call] = bot.api.calls_to("send")
    assert call.status == 413 and bot.api.uploads(SONG_CHANNEL) == []
