"""The worker thread's scheduling (issue 26): normal by default, so the model keeps its
share of the CPU against other processes (nice +5 handed it to them); nice +5 and
``SCHED_BATCH`` only when asked (the loop-delay benchmark compares them); the threads it
starts (torch's OpenMP team) inherit it."""

from __future__ import annotations

import os
import threading

import pytest

from separation.model.batching import BatchScheduler
from separation.model.loading import LoadedModel
from separation.model.offload import run_blocking
from separation.model.workers import Worker, WorkerPriority
from tests.support.pool import CountingRunner

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_setscheduler"), reason="per-thread scheduling is Linux's"
)


def _scheduling() -> tuple[int, int]:
    """The calling thread's policy and nice value."""
    return os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def _own_and_child() -> tuple[tuple[int, int], tuple[int, int]]:
    """This thread's scheduling and that of a thread it starts (as torch starts its
    OpenMP threads from the worker thread)."""
    seen: list[tuple[int, int]] = []
    child = threading.Thread(target=lambda: seen.append(_scheduling()))
    child.start()
    child.join()
    return _scheduling(), seen[0]


@pytest.mark.parametrize(
    ("priority", "policy", "niceness"),
    [
        (WorkerPriority.BATCH, os.SCHED_BATCH, 0),
        (WorkerPriority.NORMAL, os.SCHED_OTHER, 0),
        (WorkerPriority.LOWERED, os.SCHED_OTHER, 5),
    ],
)
async def test_the_worker_thread_and_its_children_are_scheduled_as_asked(
    tiny_model: LoadedModel, priority: WorkerPriority, policy: int, niceness: int
) -> None:
    loop_policy, loop_nice = _scheduling()
    assert loop_policy == os.SCHED_OTHER
    worker = Worker(
        "test", tiny_model, BatchScheduler(), runner=CountingRunner(), batch_size=1,
        priority=priority,
    )  # fmt: skip
    try:
        own, child = await run_blocking(worker._executor, _own_and_child)
    finally:
        worker.close()
    expected = (policy, min(19, loop_nice + niceness))
    assert own == expected
    assert child == expected
    assert _scheduling() == (loop_policy, loop_nice)  # the loop's thread is left alone


def test_the_default_is_normal_scheduling(tiny_model: LoadedModel) -> None:
    loop = _scheduling()
    worker = Worker("test", tiny_model, BatchScheduler(), runner=CountingRunner(), batch_size=1)
    try:
        own, _ = worker._executor.submit(_own_and_child).result()
    finally:
        worker.close()
    assert own == loop
