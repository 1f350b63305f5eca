"""The worker pool of a one-shot ``karaoke-bot separate``: the bot's, minus what only a
bot needs (issue 26).

A bot warms its model up before its first user and keeps its event loop free for chat
handlers; a command separates its inputs and ends. Everything here is measured by
``benchmarks/oneshot_profile.py`` and ``benchmarks/versus_demucs.py``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch comes with the pool; imported when a song is separated
    from bot.settings import Settings
    from separation.pool import PoolConfig


def one_shot_pool_config(settings: Settings, inputs: int) -> PoolConfig:
    """The bot's pool settings, made for this command's ``inputs`` songs and nothing else.

    Every input is this one user's: the per-user and queue limits must admit all. No
    warm-up pass (the first song is the warm-up), and the model at normal priority: no
    chat handler waits on this process's event loop. One song's encoders never run
    beside a forward pass, so they may take every core (``CpuPlan.for_one_song``).
    """
    import torch

    from bot.process.backend import pool_config
    from separation.cpu_budget import CpuPlan, available_cores
    from separation.model.workers import WorkerPriority

    config = pool_config(settings)
    config = dataclasses.replace(
        config,
        max_jobs_per_user=max(config.max_jobs_per_user, inputs),
        max_queued_jobs=max(config.max_queued_jobs, inputs),
        warm_up=False,
        worker_priority=WorkerPriority.NORMAL,
    )
    if inputs == 1:
        plan = CpuPlan.for_one_song(available_cores(), torch.get_num_threads())
        config = dataclasses.replace(config, cpu=plan)
    return config
