"""The pool of a one-shot ``karaoke-bot separate`` (issue 26): no warm-up, the model at
normal priority, and a single song's encoders on every core."""

from __future__ import annotations

import pytest

from bot.cli.one_shot import one_shot_pool_config
from bot.settings import Settings
from separation.cpu_budget import CpuBudget, CpuPlan, available_cores
from separation.model.workers import WorkerPriority


def test_one_input_gets_every_core_for_its_encoders() -> None:
    config = one_shot_pool_config(Settings(), 1)
    assert config.cpu is not None
    assert config.cpu.audio_slots == config.cpu.cores == available_cores()
    assert not config.warm_up
    assert config.worker_priority is WorkerPriority.NORMAL


def test_several_inputs_share_the_cores_as_the_bot_does() -> None:
    # Their segments share forward passes: one song's encoders run beside another's model.
    config = one_shot_pool_config(Settings(), 3)
    assert config.cpu is None  # the pool's own plan: cores - 1 audio slots
    assert config.max_jobs_per_user >= 3 and config.max_queued_jobs >= 3


@pytest.mark.parametrize(("plan", "granted"), [
    (CpuPlan.for_one_song(2, 2), 2),  # both MP3 encoders at once
    (CpuPlan.for_cores(2, 2), 1),  # one after the other, beside the model
])  # fmt: skip
async def test_two_encoders_run_at_once_only_for_one_song(plan: CpuPlan, granted: int) -> None:
    budget = CpuBudget(plan)
    async with budget.audio(2) as slots:
        assert slots == granted
        assert budget.model_threads() == max(1, 2 - granted)
