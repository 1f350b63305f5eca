"""The CPU budget: audio slots, the model step's thread count, and encoders in turns."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from separation.audio.encode import EncodingSpec, Tags
from separation.cpu_budget import CpuBudget, CpuPlan, Lane, PausePoint
from separation.rendering.render import render_outputs
from tests.support.ffmpeg_log import most_at_once, wrapped_ffmpeg
from tests.support.pool import SlotLog, read_audio

WAV = EncodingSpec(format="wav")


@pytest.mark.parametrize(
    ("cores", "threads", "slots"), [(1, 1, 1), (2, 2, 1), (3, 3, 2), (16, 4, 15)]
)
def test_the_model_keeps_a_core_and_ffmpeg_gets_the_rest(cores, threads, slots):
    plan = CpuPlan.for_cores(cores, threads)
    assert (plan.cores, plan.model_threads, plan.audio_slots) == (cores, threads, slots)


async def test_each_running_ffmpeg_takes_a_thread_from_the_model_step():
    budget = CpuBudget(CpuPlan.for_cores(4, 4))
    assert budget.model_threads() == 4
    async with budget.audio(2) as granted:
        assert granted == 2 and budget.model_threads() == 2
        async with budget.audio(5) as more:
            assert more == 1  # only the third slot was free
            assert budget.model_threads() == 1
    assert budget.in_use == 0 and budget.model_threads() == 4


async def test_torch_threads_below_the_cores_stay_below():
    budget = CpuBudget(CpuPlan.for_cores(8, 2))
    async with budget.audio(3):
        assert budget.model_threads() == 2  # 5 cores free, but 2 were configured


async def test_a_full_budget_makes_the_next_run_wait_for_a_slot():
    budget = CpuBudget(CpuPlan.for_cores(2, 2))
    order: list[str] = []
    first_holds = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with budget.audio():
            order.append("first in")
            first_holds.set()
            await release_first.wait()
            order.append("first out")

    async def second() -> None:
        await first_holds.wait()
        async with budget.audio():
            order.append("second in")

    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    await first_holds.wait()
    for _ in range(5):  # let the second reach its wait
        await asyncio.sleep(0)
    assert order == ["first in"] and budget.in_use == 1
    release_first.set()
    await asyncio.gather(*tasks)
    assert order == ["first in", "first out", "second in"]
    assert budget.in_use == 0


async def test_cancelled_holders_and_waiters_leave_nothing_behind():
    budget = CpuBudget(CpuPlan.for_cores(2, 2))
    holding = asyncio.Event()

    async def hold() -> None:
        async with budget.audio():
            holding.set()
            await asyncio.Event().wait()

    async def wait_for_slot() -> None:
        async with budget.audio():
            raise AssertionError("never granted: the holder never leaves")

    holder = asyncio.create_task(hold())
    await holding.wait()
    waiter = asyncio.create_task(wait_for_slot())
    for _ in range(5):
        await asyncio.sleep(0)
    waiter.cancel()
    holder.cancel()
    await asyncio.gather(holder, waiter, return_exceptions=True)
    assert budget.in_use == 0
    async with asyncio.timeout(5), budget.audio() as granted:
        assert granted == 1


def test_encoders_in_turns_write_the_same_files(music_stems, tmp_path, ffmpeg):
    wrapper, log = wrapped_ffmpeg(tmp_path, ffmpeg, pause=0.2)
    written = {}
    for parallel in (None, 1):
        folder = tmp_path / f"parallel-{parallel}"
        folder.mkdir()
        log.unlink(missing_ok=True)
        rendered = render_outputs(
            music_stems,
            {name: folder / f"{name}.wav" for name in ("instrumental", "vocals")},
            stems="two",
            spec=WAV,
            tags={"vocals": Tags(title="v")},
            ffmpeg=wrapper,
            sample_rate=44100,
            parallel_encoders=parallel,
        )
        assert list(rendered.paths) == ["instrumental", "vocals"]
        written[parallel] = {
            name: read_audio(path, ffmpeg) for name, path in rendered.paths.items()
        }
        assert most_at_once(log) == (2 if parallel is None else 1)
    for name in ("instrumental", "vocals"):
        np.testing.assert_array_equal(written[None][name], written[1][name])


def test_a_failing_later_group_leaves_no_earlier_output(music_stems, tmp_path, ffmpeg):
    from separation.errors import AudioExportError

    folder = tmp_path / "out"
    folder.mkdir()
    paths = {"instrumental": folder / "instrumental.wav", "vocals": tmp_path / "gone" / "v.wav"}
    with pytest.raises(AudioExportError):
        render_outputs(
            music_stems, paths, stems="two", spec=WAV, tags={}, ffmpeg=ffmpeg,
            sample_rate=44100, parallel_encoders=1,
        )  # fmt: skip
    assert list(folder.iterdir()) == []


class _Recorder:
    """The budget's slot events as ``"kind lane"`` strings, in order."""

    def __init__(self, budget: CpuBudget) -> None:
        self.events: list[str] = []
        budget.add_listener(lambda event: self.events.append(f"{event.kind} {event.lane.name}"))

    def grants(self) -> list[str]:
        return [event.split()[1] for event in self.events if event.startswith("grant")]


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_waiting_song_goes_before_a_render_that_waited_longer():
    budget = CpuBudget(CpuPlan.for_cores(2, 2))
    recorder = _Recorder(budget)
    release = asyncio.Event()
    order: list[str] = []

    async def hold(name: str, lane: Lane) -> None:
        async with budget.audio(lane=lane):
            order.append(name)
            if name == "holder":
                await release.wait()

    holder = asyncio.create_task(hold("holder", Lane.FIRST_RESULT))
    await _settle()
    renders = [asyncio.create_task(hold(f"render {n}", Lane.AFTER_THE_FACT)) for n in (1, 2)]
    await _settle()
    song = asyncio.create_task(hold("song", Lane.FIRST_RESULT))
    await _settle()
    assert budget.waiting(Lane.AFTER_THE_FACT) == 2 and budget.waiting(Lane.FIRST_RESULT) == 1
    release.set()
    await asyncio.gather(holder, song, *renders)
    assert order == ["holder", "song", "render 1", "render 2"]
    assert recorder.grants() == ["FIRST_RESULT", "FIRST_RESULT", "AFTER_THE_FACT", "AFTER_THE_FACT"]
    assert budget.in_use == 0 and budget.waiting(Lane.FIRST_RESULT) == 0


async def test_a_render_under_way_pauses_for_a_song_and_resumes_before_later_renders():
    """The render's thread calls its pause point between pieces: a song that starts
    waiting gets the slot at the next piece; the render goes on once the song is done,
    before a render that was pressed after it."""
    budget = CpuBudget(CpuPlan.for_cores(2, 2))
    recorder = _Recorder(budget)
    loop = asyncio.get_running_loop()
    rendering = asyncio.Event()
    pieces: list[str] = []

    def render(pause_point: PausePoint, name: str, stop: threading.Event) -> None:
        while True:
            pause_point()
            pieces.append(name)
            loop.call_soon_threadsafe(rendering.set)
            time.sleep(0.005)  # a piece of rubberband
            if stop.is_set():
                return

    async def pressed(name: str, stop: threading.Event) -> None:
        async with budget.preemptible(Lane.AFTER_THE_FACT) as pause_point:
            await asyncio.to_thread(render, pause_point, name, stop)

    first_stop, second_stop = threading.Event(), threading.Event()
    second_stop.set()  # one piece only
    first = asyncio.create_task(pressed("first", first_stop))
    await rendering.wait()
    second = asyncio.create_task(pressed("second", second_stop))
    await _settle()
    async with budget.audio(lane=Lane.FIRST_RESULT):  # the song's encoder
        assert budget.in_use == 1  # the render's slot, lent to the song
        assert budget.waiting(Lane.AFTER_THE_FACT) == 2  # the render paused, in line
        rendering.clear()
    await rendering.wait()  # the first render goes on
    await rendering.wait()
    first_stop.set()
    await asyncio.gather(first, second)
    assert recorder.events == [
        "grant AFTER_THE_FACT",  # the first render
        "wait AFTER_THE_FACT",  # the second render, pressed later
        "wait FIRST_RESULT",  # the song
        "pause AFTER_THE_FACT",
        "release AFTER_THE_FACT",
        "grant FIRST_RESULT",
        "wait AFTER_THE_FACT",  # the first render back in line...
        "release FIRST_RESULT",
        "grant AFTER_THE_FACT",  # ...and served before the second
        "release AFTER_THE_FACT",
        "grant AFTER_THE_FACT",
        "release AFTER_THE_FACT",
    ]
    assert pieces[-1] == "second" and pieces.count("second") == 1
    assert budget.in_use == 0


async def test_first_results_never_pause():
    budget = CpuBudget(CpuPlan.for_cores(2, 2))
    log = SlotLog(budget)
    async with budget.preemptible(Lane.FIRST_RESULT) as pause_point:
        waiting = asyncio.create_task(_hold_once(budget))
        await log.wait_for("wait FIRST_RESULT")
        await asyncio.wait_for(asyncio.to_thread(pause_point), 5)  # returns at once
        assert not waiting.done() and budget.in_use == 1
    await waiting
    assert "pause FIRST_RESULT" not in log.events and budget.in_use == 0


async def _hold_once(budget: CpuBudget) -> None:
    async with budget.audio(lane=Lane.FIRST_RESULT):
        pass


async def test_renders_wait_while_a_songs_model_step_is_under_way():
    """The model step holds no slot, but on the CPU it uses the cores a render would."""
    budget = CpuBudget(CpuPlan.for_cores(2, 2))
    recorder = _Recorder(budget)
    log = SlotLog(budget)
    holding: asyncio.Future[PausePoint] = asyncio.get_running_loop().create_future()
    done = asyncio.Event()

    async def render() -> None:
        async with budget.preemptible(Lane.AFTER_THE_FACT) as pause_point:
            holding.set_result(pause_point)
            await done.wait()

    with budget.occupied(Lane.FIRST_RESULT):
        rendering = asyncio.create_task(render())
        await log.wait_for("wait AFTER_THE_FACT")
        assert budget.in_use == 0  # the free slot is not taken
        async with asyncio.timeout(5), budget.audio(lane=Lane.FIRST_RESULT):
            pass  # another song's ffmpeg still gets it at once, ahead of the render
        assert not holding.done()
    pause_point = await holding
    assert recorder.grants() == ["FIRST_RESULT", "AFTER_THE_FACT"]
    with budget.occupied(Lane.FIRST_RESULT):  # the next song's model step
        stepping_aside = asyncio.create_task(asyncio.to_thread(pause_point))
        await log.wait_for("pause AFTER_THE_FACT")
        assert budget.in_use == 0
    await stepping_aside  # back once the model step is over
    assert budget.in_use == 1
    done.set()
    await rendering
    assert budget.in_use == 0
