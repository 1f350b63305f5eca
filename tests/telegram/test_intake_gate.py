"""``IntakeGate``: a song's update is confirmed to Telegram only after its handler ran.

PTB's ``Updater`` confirms what it put in the update queue with its next ``getUpdates``
(and a webhook answers once the update is queued), so the gate holds ``put`` of a song
until the update processor reports it handled; other updates are not held up."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3

from telegram import Update

from bot.chat.telegram.adapter import carries_song
from bot.chat.telegram.intake_gate import IntakeGate


def _message(message_id: int, **content) -> dict:
    """A private message of user 1, as the Bot API sends it."""
    return {
        "message_id": message_id,
        "date": 0,
        "chat": {"id": 1, "type": "private", "first_name": "Ann"},
        "from": {"id": 1, "is_bot": False, "first_name": "Ann"},
        **content,
    }


def _update(update_id: int, **content) -> Update:
    return Update.de_json({"update_id": update_id, "message": _message(update_id, **content)})


SONG = {"audio": {"file_id": "f1", "file_unique_id": "u1", "duration": 20}}


async def test_putting_a_song_returns_only_once_its_handler_has_run():
    gate = IntakeGate(carries_song)
    queue, processor = gate.update_queue(), gate.update_processor(4)
    order: list[str] = []
    journaled = asyncio.Event()

    async def handler() -> None:
        await journaled.wait()  # the song handler records the song
        order.append("handled")

    async def poll() -> None:
        await queue.put(_update(1, **SONG))
        order.append("confirmable")  # the Updater would now ask for the next updates

    polling = asyncio.create_task(poll())
    update = await queue.get()  # the application takes it and processes it
    processing = asyncio.create_task(processor.process_update(update, handler()))
    journaled.set()
    await asyncio.gather(polling, processing)
    assert order == ["handled", "confirmable"]


async def test_other_updates_are_not_held():
    gate = IntakeGate(carries_song)
    queue = gate.update_queue()
    await asyncio.wait_for(queue.put(_update(1, text="/status")), 5)  # nobody processes it
    assert queue.qsize() == 1


def test_a_karaoke_command_in_reply_to_a_song_carries_one():
    song = _message(100, **SONG)
    assert carries_song(_update(1, text="/karaoke", reply_to_message=song))
    assert carries_song(_update(2, **SONG))
    assert not carries_song(_update(3, text="hello", reply_to_message=_message(101, text="hi")))
    assert not carries_song(_update(4, text="/status"))


async def test_polling_confirms_a_song_only_once_it_is_on_record(telegram_bot):
    """Checked at the moment Telegram forgets the update (the next getUpdates' offset)."""
    database = telegram_bot.settings.general.data_dir / "karaoke.db"
    on_record_when_confirmed: list[int] = []

    def confirmed(updates: list[dict]) -> None:
        with contextlib.closing(sqlite3.connect(database, timeout=10)) as connection:
            rows = connection.execute("SELECT count(*) FROM song_intake").fetchone()[0]
        on_record_when_confirmed.append(rows)

    telegram_bot.api.hold_files()  # the song stays without a job: its record stays too
    telegram_bot.api.on_confirm = confirmed
    try:
        await telegram_bot.send_song()
        await telegram_bot.api.wait_for(lambda api: api.unconfirmed_updates == 0)
    finally:
        telegram_bot.api.release_files()
    assert on_record_when_confirmed == [1]
    await telegram_bot.wait_for_done()
