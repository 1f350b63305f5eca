"""A front-end SIGKILLed while its songs are queued and separating (issue 21, item 1),
as a user and an operator see it: ``karaoke-bot run`` as a real process against the fake
Bot API, on the fleet's PostgreSQL and blob folder, with a real ``karaoke-bot worker``.

The same front-end restarted, or another one (another host name, another data folder)
taking over once the dead one's delivery lease is over, must deliver every song once,
charge it once, and leave nothing behind: no upload in the blob store, no verified
result in its ``tmp/deliveries``, no run ledger row, no saved upload.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable

import pytest

from bot.chat.conversation import messages
from tests.support.fake_bot_api import TOKEN, FakeBotApi
from tests.support.fleet import ROOT, Fleet, kill, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

GRACE_SECONDS = 2.0
"""``queue.delivery_grace_seconds``: the lease another front-end waits out."""
LOG_TAIL_CHARS = 6000
SONG_SECONDS = 90.0
"""Long enough that two songs still separate when the front-end is killed."""


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    server = FakeBotApi()
    await server.start()
    yield server
    server.release_files()
    await server.stop()


def _can_rename_host() -> bool:
    """Whether a process may get a host name of its own (``unshare --uts``, as root): the
    front-end's id is its host name, and a takeover needs another one."""
    if shutil.which("unshare") is None or shutil.which("hostname") is None:
        return False
    probe = subprocess.run(["unshare", "--uts", "hostname", "heir"], capture_output=True)
    return probe.returncode == 0


class FrontEndProcess:
    """``karaoke-bot run`` for one front-end, its log in the fleet's folder."""

    def __init__(self, fleet: Fleet, api: FakeBotApi, name: str, host: str | None) -> None:
        telegram = (
            f'[telegram]\nenabled = true\nbase_url = "{api.base_url}"\n'
            f'base_file_url = "{api.base_file_url}"\n'
        )
        self.config = fleet.config(name, telegram)
        self.data = fleet.root / name
        self.log = fleet.root / f"{name}.log"
        self.host = host
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("KARAOKE_")}
        environment |= {"PYTHONPATH": str(ROOT), "KARAOKE_TELEGRAM_TOKEN": TOKEN}
        command = [sys.executable, "-m", "bot.cli.main", "--config", str(self.config), "run"]
        if self.host is not None:  # a host of its own: `hostname` then exec, same pid
            command = ["unshare", "--uts", "sh", "-c", f'hostname {self.host} && exec "$@"', "-"]
            command += [sys.executable, "-m", "bot.cli.main", "--config", str(self.config), "run"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=environment, cwd=ROOT
            )

    def kill(self) -> None:
        assert self.process is not None
        kill(self.process)

    async def stop(self) -> None:
        """SIGTERM, waited for without blocking the loop (the fake Bot API runs in it)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 30)
            except subprocess.TimeoutExpired:
                kill(self.process)

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
async def front_ends(fleet: Fleet, api: FakeBotApi):
    made: list[FrontEndProcess] = []

    def make(name: str, host: str | None = None) -> FrontEndProcess:
        made.append(FrontEndProcess(fleet, api, name, host))
        return made[-1]

    yield make
    for front in made:
        await front.stop()
        # Shown by pytest only when the test failed: what each process logged.
        print(f"--- {front.log.name} ---\n{front.text()[-LOG_TAIL_CHARS:]}")
    for log in sorted(fleet.root.glob("worker*.log")):
        print(f"--- {log.name} ---\n{log.read_text(errors='replace')[-LOG_TAIL_CHARS:]}")


async def _job_states(fleet: Fleet, chats: list[int]) -> dict[int, str]:
    rows = await fleet.query(
        "SELECT u.platform_user_id, j.status FROM jobs j JOIN users u ON u.id = j.user_id"
        " WHERE u.platform = 'telegram' AND u.platform_user_id = ANY(%s)",
        [str(chat) for chat in chats],
    )
    return {int(str(user)): str(status) for user, status in rows}


async def _until(condition: Callable[[], object], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():  # type: ignore[misc]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


def _files_in(api: FakeBotApi, chat: int) -> int:
    return sum(
        str(call.params.get("chat_id")) == str(chat)
        for call in api.calls_to("sendAudio", "sendDocument")
    )


@pytest.mark.parametrize("successor", ["restarted", "another"])
async def test_a_sigkilled_front_end_s_songs_are_delivered_once_by_its_successor(
    fleet: Fleet, api: FakeBotApi, front_ends, song, successor
):
    if successor == "another" and not _can_rename_host():
        pytest.skip("needs `unshare --uts` (root) for a second front-end host name")
    # A worker paused while no front-end runs must not be taken for dead meanwhile.
    fleet.queue_options = {"stalled_after_seconds": 120.0, "delivery_grace_seconds": GRACE_SECONDS}
    worker = fleet.start_worker()
    first = front_ends("front")
    first.start()
    await asyncio.to_thread(fleet.wait_until_ready, worker)
    await api.wait_for(lambda a: a.calls_to("setMyCommands"), within=90)

    # Three users, one song each; the worker takes two at once: two separate, one waits.
    base = random.randrange(10**8, 10**9)
    chats = [base, base + 1, base + 2]
    for index, chat in enumerate(chats):  # lengths differ: three songs, not one thrice
        media = api.audio_attachment(song(SONG_SECONDS + index, f"s{index}"))
        api.push_update({"message": api.message(chat_id=chat, user_id=chat, **media)})

    async def two_running_one_queued() -> bool:
        states = sorted((await _job_states(fleet, chats)).values())
        return states == ["queued", "running", "running"]

    await _until(two_running_one_queued, 120)
    first.kill()
    os.kill(worker.pid, signal.SIGSTOP)  # the songs go on only once the successor is up
    try:
        states = await _job_states(fleet, chats)
        running = [chat for chat in chats if states[chat] == "running"]
        assert len(running) == 2

        if successor == "restarted":
            after = first
        else:
            after = front_ends("heir", host=f"heir-{base}")
        launched = time.monotonic()
        after.start()
        polls = api.polls
        await api.wait_for(lambda a: a.polls > polls + 1, within=90)
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    resumed = time.monotonic()

    delivered: dict[int, float] = {}

    def all_delivered() -> bool:
        for chat in chats:
            texts = api.texts_in_chat(chat)
            assert not any(t.startswith("Something went wrong") for t in texts), texts
            if chat not in delivered and texts and texts[-1] == messages.DONE:
                if _files_in(api, chat) == 2:
                    delivered[chat] = time.monotonic()
        return len(delivered) == len(chats)

    await wait_for(all_delivered, 120)
    for chat in running:
        print(
            f"{successor}: running song of chat {chat} delivered "
            f"{delivered[chat] - launched:.1f} s after the start of its successor, "
            f"{delivered[chat] - resumed:.1f} s after it was up and the worker resumed"
        )

    # As the users see it: each song once, in its own message, no apology.
    for chat in chats:
        texts = api.texts_in_chat(chat)
        assert not any(text.startswith("Something went wrong") for text in texts), texts
        assert texts.count(messages.DONE) == 1
        assert _files_in(api, chat) == 2
    assert "internal error" not in after.text()

    # As the store sees it: done (recorded just after the files went), charged once,
    # nothing refunded.
    async def all_done() -> bool:
        return set((await _job_states(fleet, chats)).values()) == {"done"}

    await _until(all_done, 30)
    charges = await fleet.query(
        "SELECT u.platform_user_id, count(*), count(g.refunded_at) FROM usage g"
        " JOIN users u ON u.id = g.user_id WHERE u.platform_user_id = ANY(%s)"
        " GROUP BY u.platform_user_id",
        [str(chat) for chat in chats],
    )
    assert sorted((int(str(u)), n, r) for u, n, r in charges) == [(c, 1, 0) for c in chats]

    # Nothing left behind (the clean-up after a delivery runs in the background).
    deliveries = after.data / "tmp" / "deliveries"

    async def nothing_left() -> bool:
        ledger = await fleet.query(
            "SELECT count(*) FROM separation_runs r JOIN procrastinate_jobs j"
            " ON j.id = r.queue_job_id WHERE j.queue_name = %s",
            fleet.queue,
        )
        return (
            ledger == [(0,)]
            and fleet.blob_files("inputs") == []
            and (not deliveries.exists() or list(deliveries.iterdir()) == [])
            # The successor's own saved uploads (a dead host's stay there until that
            # host's retention removes them: no other host can reach them).
            and list((after.data / "uploads").glob("*")) == []
        )

    await _until(nothing_left, 30)
