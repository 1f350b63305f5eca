"""Upload limits and file grouping, with real discord.py objects built from API payloads."""

from __future__ import annotations

from pathlib import Path

import discord
import pytest

from bot.chat.conversation.types import OutgoingFile
from bot.chat.discord.attachments import is_song_attachment
from bot.chat.discord.replies import (
    DEFAULT_UPLOAD_LIMIT,
    MAX_FILES_PER_MESSAGE,
    DiscordUploadTooLargeError,
    group_files,
    plan_for_guild,
    upload_plan,
)
from tests.support.fake_discord_api import FakeDiscordApi

MIB = 2**20


@pytest.fixture
def state() -> discord.state.ConnectionState:
    """A client's connection state: what discord.py builds its objects with."""
    return discord.Client(intents=discord.Intents.default())._connection


@pytest.mark.parametrize(
    "premium_tier, limit", [(0, 10 * MIB), (1, 10 * MIB), (2, 50 * MIB), (3, 100 * MIB)]
)
def test_boosted_servers_allow_bigger_results(state, premium_tier, limit):
    payload = FakeDiscordApi().add_guild(1, channel_ids=[2], premium_tier=premium_tier)
    plan = plan_for_guild(discord.Guild(data=payload, state=state))
    assert plan.max_file_bytes == plan.max_message_bytes == limit


def test_dms_use_the_default_limit():
    assert plan_for_guild(None).max_file_bytes == DEFAULT_UPLOAD_LIMIT == 10 * MIB


@pytest.mark.parametrize(
    "filename, content_type, is_song",
    [
        ("song.mp3", "audio/mpeg", True),
        ("voice-message.ogg", "audio/ogg; codecs=opus", True),
        ("clip.mp4", "video/mp4", True),
        ("song.flac", None, True),  # no content type: guessed from the name
        ("clip.webm", None, True),
        ("paper.pdf", "application/pdf", False),
        ("notes.txt", None, False),
        ("no-extension", None, False),
    ],
)
def test_which_attachments_are_songs(state, tmp_path, filename, content_type, is_song):
    api = FakeDiscordApi()
    payload = api.attachment(
        tmp_path, channel_id=1, filename=filename, content_type=content_type, declared_size=10
    )
    assert is_song_attachment(discord.Attachment(data=payload, state=state)) is is_song


def _files(tmp_path: Path, *sizes: int) -> list[OutgoingFile]:
    files = []
    for index, size in enumerate(sizes):
        path = tmp_path / f"stem{index}.mp3"
        path.write_bytes(b"\0" * size)
        files.append(OutgoingFile(path=path, filename=path.name, title=f"Stem {index}"))
    return files


@pytest.mark.parametrize(
    "sizes, limit, grouping",
    [
        ((400, 500), 1000, [[0, 1]]),
        ((600, 500), 1000, [[0], [1]]),
        ((300, 300, 300, 300), 1000, [[0, 1, 2], [3]]),
        ((1000, 1), 1000, [[0], [1]]),
        ((1,) * (MAX_FILES_PER_MESSAGE + 1), 1000, [list(range(10)), [10]]),
    ],
)
def test_files_are_grouped_in_order_within_the_message_limit(tmp_path, sizes, limit, grouping):
    files = _files(tmp_path, *sizes)
    groups = group_files(files, upload_plan(limit), min_bitrate=96)
    assert [[files.index(file) for file in group] for group in groups] == grouping


def test_a_file_over_the_limit_is_refused_before_anything_is_sent(tmp_path):
    files = _files(tmp_path, 100, 2000)
    with pytest.raises(DiscordUploadTooLargeError) as refused:
        group_files(files, upload_plan(1000), min_bitrate=96)
    assert refused.value.budget_bytes == 1000
    assert refused.value.kind == "output_too_large"
