"""Round-robin admission between users, and the queue's wait estimates."""

from __future__ import annotations

import pytest

from separation.model.eta import ThroughputMeter, segments_for, start_times
from separation.pool.scheduler import FairQueue


def test_one_user_with_many_songs_does_not_starve_later_users():
    queue: FairQueue[str] = FairQueue()
    for song in ("a1", "a2", "a3", "a4"):
        queue.push("alice", song)
    assert queue.pop() == "a1"
    queue.push("bob", "b1")
    queue.push("carol", "c1")
    queue.push("bob", "b2")
    assert [queue.pop() for _ in range(len(queue))] == ["b1", "c1", "a2", "b2", "a3", "a4"]


def test_removing_a_cancelled_item_and_positions():
    queue: FairQueue[str] = FairQueue()
    for user, song in (("a", "a1"), ("a", "a2"), ("b", "b1")):
        queue.push(user, song)
    assert queue.items() == ["a1", "b1", "a2"]
    assert queue.remove("b1") and not queue.remove("b1")
    assert queue.items() == ["a1", "a2"]
    with pytest.raises(IndexError):
        FairQueue().pop()


def test_start_times_share_the_pool_between_running_jobs():
    # Two slots, 10 segments/s; running jobs need 10 and 30 segments.
    # Sharing: the first finishes after 10*2/10 = 2 s, freeing a slot for queued job 1;
    # then 20 and 40 remain... queued job 2 starts when the next one finishes.
    starts = start_times([10, 30], [40, 40], slots=2, segments_per_second=10)
    assert starts[0] == pytest.approx(2.0)
    assert starts[1] == pytest.approx(2.0 + 20 * 2 / 10)
    assert start_times([5], [1, 1], slots=3, segments_per_second=1) == [0.0, 0.0]


def test_meter_and_song_cost():
    meter = ThroughputMeter(smoothing=0.5)
    assert meter.segments_per_second is None
    meter.record(4, 2.0)
    meter.record(4, 1.0)
    assert meter.segments_per_second == pytest.approx(3.0)
    assert segments_for(240, 7.8, 0.25, passes=1) == 42
    assert segments_for(240, 7.8, 0.25, passes=4) == 168
