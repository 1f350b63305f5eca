"""Songs through the chat flow on the distributed backend: delivered once, charged once.

The flow, the store (on the fleet's PostgreSQL) and the front-end's backend are real;
only the chat platform is a recorder. Worker processes are real and are killed for real.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.chat.conversation import messages
from bot.chat.conversation.types import ChatUser
from storage.records import JobStatus
from tests.support.chat import RecordingReplier, upload_of
from tests.support.fleet import Fleet, FrontEnd, kill, new_user, wait_for

pytestmark = pytest.mark.slow


async def songs_used(front: FrontEnd, chat_user: ChatUser) -> int:
    user = await front.store.users.get("telegram", chat_user.user_id)
    status = await front.store.quotas.status(user, front.flow.config.quota_limits("telegram"))
    return status.songs_used


def running(replier: RecordingReplier) -> bool:
    return any(t.startswith("Separating...") and not t.endswith(" 0%") for t in replier.texts)


def queued(replier: RecordingReplier) -> bool:
    return any(text.startswith("Queued") for text in replier.texts)


async def test_a_worker_killed_mid_song_costs_the_user_one_song_and_one_delivery(
    fleet: Fleet, front_ends, song
):
    user, chat = new_user()
    first, second = fleet.start_worker(), fleet.start_worker()
    fleet.wait_until_ready(first, second)
    front = await front_ends("front")
    replier = RecordingReplier()
    task = asyncio.create_task(
        front.flow.handle_song(user, chat, replier, upload_of(song(75, "k")))
    )
    await wait_for(lambda: running(replier), seconds=120)
    rows = await fleet.query(
        "SELECT r.worker, r.queue_job_id FROM separation_runs r"
        " JOIN procrastinate_jobs j ON j.id = r.queue_job_id WHERE j.queue_name = %s",
        fleet.queue,
    )
    victim = first if f"-{first.pid}-" in str(rows[0][0]) else second
    kill(victim)
    record = await task
    assert record is not None and record.status == "done"
    # The job row keeps the queue job that carried it and how many starts it took.
    assert (record.attempt, record.queue_job_id) == (2, int(rows[0][1]))
    assert [file.title for file in replier.files] == ["k (Instrumental)", "k (Vocals)"]
    assert replier.texts.count(messages.DONE) == 1
    assert await songs_used(front, user) == 1
    survivor = second if victim is first else first
    assert ": attempt 2 on " in fleet.worker_log(survivor)
    # The user saw why the percentage began again, and it never went back otherwise.
    separating = [t for t in replier.texts if t.startswith("Separating... ")]
    restarted = [messages.RESTARTED_ON_ANOTHER_WORKER in t for t in separating]
    assert restarted.count(True) >= 1 and restarted == sorted(restarted)  # once restarted...
    for attempt in (False, True):
        shown = [
            int(t.split()[1].rstrip("%"))
            for t, r in zip(separating, restarted, strict=True)
            if r is attempt
        ]
        assert shown == sorted(shown)


async def test_another_front_end_delivers_a_song_whose_front_end_died(
    fleet: Fleet, front_ends, song
):
    user, chat = new_user()
    dead, alive = await front_ends("a"), await front_ends("b")
    lost_replier = RecordingReplier()
    task = asyncio.create_task(
        dead.flow.handle_song(user, chat, lost_replier, upload_of(song(6, "t")))
    )
    await wait_for(lambda: queued(lost_replier), 60)
    task.cancel()  # the process dies: nothing released, nothing cancelled
    await asyncio.gather(task, return_exceptions=True)
    # Still leased by the dead front-end: nobody takes it over yet.
    assert await alive.store.deliveries.to_take_over("telegram", holder="host-b") == []

    worker = fleet.start_worker()
    fleet.wait_until_ready(worker)
    taken: list = []

    async def lease_over() -> None:
        while not taken:
            taken.extend(await alive.store.deliveries.to_take_over("telegram", holder="host-b"))
            await asyncio.sleep(0.1)

    await asyncio.wait_for(lease_over(), 30)
    [recovered] = taken
    replier = RecordingReplier()
    record = await alive.flow.run_job(user, recovered.job, replier)
    assert record.status == "done"
    assert len(replier.files) == 2 and lost_replier.files == []
    assert not await dead.store.deliveries.claim(recovered.job.id, "host-a", 1.5)
    assert await songs_used(alive, user) == 1


async def test_the_same_front_end_restarted_takes_its_songs_back_at_once(
    fleet: Fleet, front_ends, song
):
    user, chat = new_user()
    before = await front_ends("same")
    replier = RecordingReplier()
    task = asyncio.create_task(
        before.flow.handle_song(user, chat, replier, upload_of(song(6, "r")))
    )
    await wait_for(lambda: queued(replier), 60)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    held = await before.store.deliveries.to_take_over("telegram", holder="host-same", own_too=True)
    assert len(held) == 1  # its own, though the lease has not run out
    worker = fleet.start_worker()
    fleet.wait_until_ready(worker)
    again = RecordingReplier()
    record = await before.flow.run_job(user, held[0].job, again)
    assert record.status == "done" and len(again.files) == 2


@pytest.mark.parametrize("successor", ["same", "other"])
async def test_a_song_running_when_its_front_end_died_is_delivered_by_the_next_one(
    fleet: Fleet, front_ends, song, successor
):
    """Issue 21, item 1: the job is ``running`` in the store when its front-end dies;
    the front-end that resumes it follows the run, it does not start it again."""
    user, chat = new_user()
    worker = fleet.start_worker()
    fleet.wait_until_ready(worker)
    dead = await front_ends("dead")
    lost_replier = RecordingReplier()
    task = asyncio.create_task(
        dead.flow.handle_song(user, chat, lost_replier, upload_of(song(40, successor)))
    )
    await wait_for(lambda: running(lost_replier), 120)
    task.cancel()  # the process dies: nothing released, nothing cancelled
    await asyncio.gather(task, return_exceptions=True)
    if successor == "same":
        after = dead
        taken = await after.store.deliveries.to_take_over(
            "telegram", holder="host-dead", own_too=True
        )
    else:
        after = await front_ends("heir")
        taken = []
        while not taken:  # until the dead front-end's lease is over
            taken = await after.store.deliveries.to_take_over("telegram", holder="host-heir")
            await asyncio.sleep(0.1)
    [recovered] = taken
    assert recovered.job.status is JobStatus.RUNNING  # still separating on the worker
    replier = RecordingReplier()
    record = await after.flow.run_job(user, recovered.job, replier)
    assert record.status is JobStatus.DONE
    assert replier.texts[-1] == messages.DONE and len(replier.files) == 2
    assert await songs_used(after, user) == 1


async def test_a_song_the_flow_gives_up_on_stops_on_the_fleet_and_leaves_nothing(
    fleet: Fleet, front_ends, song, monkeypatch
):
    """An error of the front-end's own while it follows a song (the store failing as the
    worker starts it) fails the song uncharged; the song is then cancelled on its worker,
    not separated, downloaded and left in ``tmp/deliveries`` and the blob store."""
    user, chat = new_user()
    worker = fleet.start_worker()
    fleet.wait_until_ready(worker)
    front = await front_ends("front")

    async def store_down(job_id: int, attempt: int | None = None) -> int:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(front.store.deliveries, "record_attempt", store_down)
    replier = RecordingReplier()
    record = await front.flow.handle_song(user, chat, replier, upload_of(song(40, "gone")))
    assert record is not None and record.status == "failed"
    assert replier.texts[-1].startswith("Something went wrong") and replier.files == []
    assert await songs_used(front, user) == 0
    deliveries = fleet.root / "front" / "tmp" / "deliveries"

    async def nothing_left() -> bool:
        ledger = await fleet.query(
            "SELECT count(*) FROM separation_runs r JOIN procrastinate_jobs j"
            " ON j.id = r.queue_job_id WHERE j.queue_name = %s",
            fleet.queue,
        )
        return ledger == [(0,)] and not fleet.blob_files("inputs")

    deadline = asyncio.get_running_loop().time() + 30
    while not await nothing_left():
        assert asyncio.get_running_loop().time() < deadline, "leftovers stayed"
        await asyncio.sleep(0.1)
    assert list(deliveries.iterdir()) == []
    assert "ended: cancelled" in fleet.worker_log(worker)
