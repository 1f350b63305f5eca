"""The CPU budget: audio slots, the model step's thread count, and encoders in turns."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from separation.cpu_budget import CpuBudget, CpuPlan
from separation.encode import EncodingSpec, Tags
from separation.render import render_outputs
from tests.ffmpeg_log import most_at_once, wrapped_ffmpeg
from tests.pool.helpers import read_audio
from tests.separation.test_render import music_stems  # noqa: F401  (fixture)

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


def test_encoders_in_turns_write_the_same_files(music_stems, tmp_path, ffmpeg):  # noqa: F811
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


def test_a_failing_later_group_leaves_no_earlier_output(music_stems, tmp_path, ffmpeg):  # noqa: F811
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
