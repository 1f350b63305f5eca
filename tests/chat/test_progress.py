"""The progress message: one message, edited in place, at most once per interval."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from bot.chat.conversation.progress import ProgressMessage


class Recorder:
    """Records sends and edits with the loop time at which they happened."""

    def __init__(self, fail_edits: bool = False) -> None:
        self.events: list[tuple[str, str, float]] = []
        self.fail_edits = fail_edits
        self._changed = asyncio.Event()

    def _record(self, kind: str, text: str) -> None:
        self.events.append((kind, text, asyncio.get_running_loop().time()))
        self._changed.set()

    async def send(self, text: str) -> str:
        self._record("send", text)
        return "handle"

    async def edit(self, handle: str, text: str) -> None:
        if handle != "handle":
            raise LookupError("message to edit not found")
        if self.fail_edits:
            raise ConnectionError("platform hiccup")
        self._record("edit", text)

    async def wait_until(
        self, condition: Callable[[list[tuple[str, str, float]]], bool], within: float = 10.0
    ) -> None:
        """Until ``condition(self.events)`` holds (checked after every send and edit)."""
        async with asyncio.timeout(within):
            while not condition(self.events):
                self._changed.clear()
                await self._changed.wait()


async def test_first_text_is_sent_then_edited():
    recorder = Recorder()
    progress = ProgressMessage(recorder.send, recorder.edit, min_interval=0.05)
    await progress.show("Queued")
    await progress.final("Done")
    assert [(kind, text) for kind, text, _ in recorder.events] == [
        ("send", "Queued"),
        ("edit", "Done"),
    ]


async def test_edits_are_throttled_and_coalesced_latest_wins():
    recorder = Recorder()
    progress = ProgressMessage(recorder.send, recorder.edit, min_interval=0.3)
    for percent in range(0, 100, 5):  # 20 updates in ~0.6 s
        await progress.show(f"Separating... {percent}%")
        await asyncio.sleep(0.03)
    await progress.final("Done")
    times = [at for _, _, at in recorder.events[:-1]]  # the final state is not throttled
    assert all(later - earlier >= 0.29 for earlier, later in itertools.pairwise(times))
    texts = [text for _, text, _ in recorder.events]
    assert texts[0] == "Separating... 0%"
    assert texts[-1] == "Done"
    assert len(texts) <= 4  # 0.6 s at one edit per 0.3 s, plus the final one


async def test_default_interval_is_three_seconds_and_the_final_state_does_not_wait():
    recorder = Recorder()
    progress = ProgressMessage(recorder.send, recorder.edit)
    await progress.show("Queued (position 2, about 40 s)")
    await progress.show("Separating... 10%")
    assert [text for _, text, _ in recorder.events] == ["Queued (position 2, about 40 s)"]
    started = asyncio.get_running_loop().time()
    await progress.final("Done")
    assert asyncio.get_running_loop().time() - started < 0.1  # not 3 s later (issue 11)
    assert [text for _, text, _ in recorder.events] == ["Queued (position 2, about 40 s)", "Done"]

    # The held-back state is shown when its slot comes: three seconds after the last edit.
    throttled = Recorder()
    progress = ProgressMessage(throttled.send, throttled.edit)
    await progress.show("Queued (position 2, about 40 s)")
    await progress.show("Separating... 10%")
    await throttled.wait_until(lambda events: len(events) == 2)
    (_, _, sent_at), (kind, text, edited_at) = throttled.events
    assert (kind, text) == ("edit", "Separating... 10%")
    assert edited_at - sent_at >= 2.95


async def test_a_refusal_as_the_first_state_is_sent_at_once():
    recorder = Recorder()
    progress = ProgressMessage(recorder.send, recorder.edit)
    await progress.final("Sorry, you can't use this bot.")
    await progress.final("Sorry, you can't use this bot.")
    assert [(kind, text) for kind, text, _ in recorder.events] == [
        ("send", "Sorry, you can't use this bot.")
    ]


async def test_repeated_text_is_not_sent_again():
    recorder = Recorder()
    progress = ProgressMessage(recorder.send, recorder.edit, min_interval=0.0)
    for _ in range(5):
        await progress.show("Separating... 45%")
    assert len(recorder.events) == 1


async def test_failed_edits_do_not_fail_the_job():
    recorder = Recorder(fail_edits=True)
    progress = ProgressMessage(recorder.send, recorder.edit, min_interval=0.0)
    await progress.show("Queued")
    await progress.final("Done")  # raises nothing
    assert [text for _, text, _ in recorder.events] == ["Queued"]


async def test_an_ordinary_pending_state_is_dropped_by_final():
    recorder = Recorder()
    progress = ProgressMessage(recorder.send, recorder.edit, min_interval=0.2)
    await progress.show("Separating... 10%")
    await progress.show("Separating... 20%")
    await progress.final("Done")
    assert [text for _, text, _ in recorder.events] == ["Separating... 10%", "Done"]


async def test_close_drops_a_pending_state():
    recorder = Recorder()
    progress = ProgressMessage(recorder.send, recorder.edit, min_interval=0.2)
    # A twin that is not closed: when its pending edit has come, the closed one's would have.
    twin = Recorder()
    witness = ProgressMessage(twin.send, twin.edit, min_interval=0.2)
    await progress.show("Separating... 99%")
    await witness.show("Separating... 99%")
    await progress.show("Separating... 100%")
    await witness.show("Separating... 100%")
    progress.close()
    await twin.wait_until(lambda events: len(events) == 2)
    assert [text for _, text, _ in recorder.events] == ["Separating... 99%"]
    await progress.final("Upload failed")
    assert [text for _, text, _ in recorder.events] == ["Separating... 99%", "Upload failed"]


async def test_the_final_state_follows_an_edit_already_on_its_way():
    recorder = Recorder()
    slow_edit = asyncio.Event()
    edit_on_its_way = asyncio.Event()

    async def edit(handle: str, text: str) -> None:
        edit_on_its_way.set()
        await slow_edit.wait()
        await recorder.edit(handle, text)

    progress = ProgressMessage(recorder.send, edit, min_interval=0.05)
    await progress.show("Separating... 50%")
    await progress.show("Separating... 90%")
    await asyncio.wait_for(edit_on_its_way.wait(), 5)  # it has left and waits on the platform
    final = asyncio.create_task(progress.final("Done"))
    await asyncio.sleep(0.05)
    slow_edit.set()
    await final
    assert [text for _, text, _ in recorder.events] == [
        "Separating... 50%",
        "Separating... 90%",
        "Done",
    ]


async def test_continue_in_an_earlier_message_edits_it():
    recorder = Recorder()
    progress = ProgressMessage(recorder.send, recorder.edit, min_interval=0.0)
    progress.continue_in("handle")  # sent by the process before a restart
    await progress.show("Separating... 0%")
    await progress.final("Done")
    assert [(kind, text) for kind, text, _ in recorder.events] == [
        ("edit", "Separating... 0%"),
        ("edit", "Done"),
    ]


async def test_an_earlier_message_that_is_gone_is_replaced_by_a_new_one():
    recorder = Recorder()
    progress = ProgressMessage(recorder.send, recorder.edit, min_interval=0.0)
    progress.continue_in("deleted")  # Recorder.edit refuses any handle but "handle"
    await progress.show("Separating... 0%")
    await progress.final("Done")
    assert [(kind, text) for kind, text, _ in recorder.events] == [
        ("send", "Separating... 0%"),
        ("edit", "Done"),
    ]
