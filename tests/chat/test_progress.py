"""The progress message: one message, edited in place, at most once per interval."""

from __future__ import annotations

import asyncio
import itertools

from bot.progress import ProgressMessage


class Recorder:
    """Records sends and edits with the loop time at which they happened."""

    def __init__(self, fail_edits: bool = False) -> None:
        self.events: list[tuple[str, str, float]] = []
        self.fail_edits = fail_edits

    async def send(self, text: str) -> str:
        self.events.append(("send", text, asyncio.get_running_loop().time()))
        return "handle"

    async def edit(self, handle: str, text: str) -> None:
        assert handle == "handle"
        if self.fail_edits:
            raise ConnectionError("platform hiccup")
        self.events.append(("edit", text, asyncio.get_running_loop().time()))


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
    times = [at for _, _, at in recorder.events]
    assert all(later - earlier >= 0.29 for earlier, later in itertools.pairwise(times))
    texts = [text for _, text, _ in recorder.events]
    assert texts[0] == "Separating... 0%"
    assert texts[-1] == "Done"
    assert len(texts) <= 4  # 0.6 s at one edit per 0.3 s, plus the final one


async def test_default_interval_is_three_seconds():
    recorder = Recorder()
    progress = ProgressMessage(recorder.send, recorder.edit)
    await progress.show("Queued (position 2, about 40 s)")
    await progress.show("Separating... 10%")
    started = asyncio.get_running_loop().time()
    await progress.final("Done")
    assert asyncio.get_running_loop().time() - started >= 2.9
    assert [text for _, text, _ in recorder.events] == ["Queued (position 2, about 40 s)", "Done"]


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


async def test_a_milestone_is_shown_before_a_quick_final_state():
    recorder = Recorder()
    progress = ProgressMessage(recorder.send, recorder.edit, min_interval=0.2)
    await progress.show("Separating... 99%")
    await progress.milestone("Uploading...")  # within the interval: pending
    await progress.final("Done")
    events = recorder.events
    assert [text for _, text, _ in events] == ["Separating... 99%", "Uploading...", "Done"]
    assert events[2][2] - events[1][2] >= 0.19  # still throttled


async def test_an_ordinary_pending_state_is_dropped_by_final():
    recorder = Recorder()
    progress = ProgressMessage(recorder.send, recorder.edit, min_interval=0.2)
    await progress.show("Separating... 10%")
    await progress.show("Separating... 20%")
    await progress.final("Done")
    assert [text for _, text, _ in recorder.events] == ["Separating... 10%", "Done"]


async def test_close_drops_a_pending_milestone():
    recorder = Recorder()
    progress = ProgressMessage(recorder.send, recorder.edit, min_interval=0.2)
    await progress.show("Separating... 99%")
    await progress.milestone("Uploading...")
    progress.close()
    await progress.final("Upload failed")
    assert [text for _, text, _ in recorder.events] == ["Separating... 99%", "Upload failed"]
