"""A crash before a song's job exists (issue 20, item 2), through the real ``karaoke-bot
run`` process and the fake Bot API: SIGKILL while songs download (or wait for a download
slot) and while their headers are checked (or wait for a slot), then a restart. Telegram
never sends a confirmed update again; each song must still end in a result or in one
sentence saying it was lost, in its own progress message, and nothing may stay behind in
``uploads/``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from bot.chat.conversation import messages
from tests.support.fake_bot_api import TOKEN, FakeBotApi
from tests.support.telegram_bot import run_bot, write_config

CHATS = (5101, 5102, 5103)
"""Three users, one song each; the last one's file is gone from Telegram at the restart."""
SLOTS = "[audio]\nmax_parallel_downloads = 2\nmax_parallel_probes = 1\n"
"""Two songs download and one waits for a slot; one header check runs, two wait."""


@pytest.fixture
async def api():
    server = FakeBotApi()
    await server.start()
    yield server
    server.release_files()
    await server.stop()


def _gated_header_reader(folder: Path) -> tuple[Path, Path, Path]:
    """A Python for the header reader (``audio.header_reader_python``) that, while the
    returned hold file exists, waits before reading any upload (a header check in
    progress) and leaves a mark in the returned folder when it starts to; everything else
    goes straight to the real Python. Returns (the script, hold, marks)."""
    hold, marks = folder / "hold", folder / "marks"
    marks.mkdir()
    script = folder / "python"
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in *"/uploads/"*)\n'
        f'  if [ -e "{hold}" ]; then\n'
        f'    touch "{marks}/$$"\n'
        f'    while [ -e "{hold}" ]; do sleep 0.05; done\n'
        "  fi;;\n"
        "esac\n"
        f'exec "{sys.executable}" "$@"\n'
    )
    script.chmod(0o755)
    return script, hold, marks


def _count(database: Path, query: str) -> int:
    """One number from the bot's SQLite database, read while the bot runs."""
    with contextlib.closing(sqlite3.connect(database, timeout=10)) as connection:
        return int(connection.execute(query).fetchone()[0])


@pytest.mark.parametrize("stage", ["download", "header check"])
async def test_songs_a_crash_caught_before_their_job_end_in_a_result_or_an_apology(
    stage, api, tmp_path, model_repo, telegram_songs
):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    reader, hold, marks = _gated_header_reader(bin_dir)
    slots = SLOTS + f'header_reader_python = "{reader}"\n'
    config = write_config(tmp_path, api, model_repo, extra=slots)
    uploads = tmp_path / "data" / "uploads"
    database = tmp_path / "data" / "karaoke.db"

    first = await run_bot(config, TOKEN)
    try:
        await api.wait_for(lambda a: a.calls_to("setMyCommands"), within=60)
        if stage == "download":
            api.hold_files()
        else:
            hold.touch()
        file_ids = []
        for chat in CHATS:
            media = api.audio_attachment(telegram_songs["clip.mp3"])
            file_ids.append(media["audio"]["file_id"])
            api.push_update({"message": api.message(chat_id=chat, user_id=chat, **media)})
        # Each user saw "Downloading your song..." and its id is on record; Telegram has
        # forgotten the updates (the next getUpdates confirmed them).
        await api.wait_for(
            lambda a: all(a.texts_in_chat(chat) == [messages.DOWNLOADING] for chat in CHATS)
        )
        recorded = "SELECT count(*) FROM song_intake WHERE progress_message IS NOT NULL"
        await api.wait_for(lambda a: _count(database, recorded) == len(CHATS))
        await api.wait_for(lambda a: a.unconfirmed_updates == 0)
        if stage == "download":  # two downloads under way, the third waits for a slot
            await api.wait_for(lambda a: a.file_downloads == 2)
        else:  # all downloaded; one header check under way, two wait for the slot
            await api.wait_for(lambda a: len(list(marks.iterdir())) == 1)
            await api.wait_for(lambda a: len(list(uploads.glob("*.upload"))) == len(CHATS))
        first.kill()
        await asyncio.wait_for(first.communicate(), 60)
    finally:
        if first.returncode is None:
            first.kill()
    assert _count(database, "SELECT count(*) FROM jobs") == 0  # the window of issue 20
    assert list(uploads.iterdir())  # partial downloads, or uploads without a job
    hold.unlink(missing_ok=True)
    api.release_files()
    api.forget_file(file_ids[-1])  # Telegram no longer hands the last song out
    sent_before = len(api.calls_to("sendMessage"))

    second = await run_bot(config, TOKEN)
    try:
        await api.wait_for(lambda a: len(a.calls_to("sendAudio")) == 4, within=90)
        await api.wait_for(
            lambda a: (
                [a.texts_in_chat(chat)[-1] for chat in CHATS]
                == [messages.DONE, messages.DONE, messages.LOST_BEFORE_SAVED]
            ),
            within=30,
        )
        await api.wait_for(
            lambda a: _count(database, "SELECT count(*) FROM jobs WHERE status = 'done'") == 2,
            within=30,
        )
        second.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(second.communicate(), 60)
    finally:
        if second.returncode is None:
            second.kill()
    assert second.returncode == 0, stderr.decode()
    # Each song ended in the message that said "Downloading your song...".
    assert len(api.calls_to("sendMessage")) == sent_before == len(CHATS)
    assert sorted(int(call.params["chat_id"]) for call in api.calls_to("sendAudio")) == sorted(
        [CHATS[0]] * 2 + [CHATS[1]] * 2
    )
    assert list(uploads.iterdir()) == []
    assert _count(database, "SELECT count(*) FROM song_intake") == 0
    charges = "SELECT count(*) FROM usage JOIN users ON users.id = usage.user_id"
    assert _count(database, charges) == 2
    assert _count(database, f"{charges} WHERE platform_user_id = '{CHATS[-1]}'") == 0  # lost: free
