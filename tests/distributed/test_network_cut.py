"""A worker whose network link is cut mid-song, for real: no signals, a dead cable.

Each worker runs in a network namespace of its own (``ip netns exec``), linked to the
host by a veth pair on a private /30 subnet; it reaches PostgreSQL (which listens on
127.0.0.1 only) through a small TCP forwarder that this test runs on the host ends. The
blob store stays the shared folder (namespaces share the filesystem). Cutting a link
(``ip link set HOST_END down``) leaves the worker computing but unheard: its song goes
to the other worker, and once the link is back the cut-off worker's late outcome is
rejected by the run ledger.

Needs root and working ``ip netns``; skipped with the reason otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.engine import make_url

from separation.jobs import Done, JobHandle, Running
from tests.support.fleet import Fleet, ledger, request, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(330)]
"""Passes in ~20 s; the limit only covers the bounded waits below when something hangs."""

POSTGRES = ("127.0.0.1", 5432)
IP_SECONDS = 10.0
"""The most one ``ip`` command may take."""
FORWARDER_MAX_CONNECTIONS = 64
FORWARDER_CONNECT_SECONDS = 5.0
DELIVERY_SECONDS = 90.0
"""How long the other worker may take to run the song again and deliver it."""
SUPERSEDED_SECONDS = 120.0
"""How long the cut-off worker may take, once its link is back, to reach PostgreSQL
again (its TCP connections resume at their next retransmission) and be told no."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", *args], capture_output=True, text=True, timeout=IP_SECONDS, check=check
    )


@dataclass
class Link:
    """One worker's namespace and its veth pair: ``host_address`` on the host end,
    ``worker_address`` on the end inside the namespace."""

    namespace: str
    host_end: str
    worker_end: str
    subnet: str
    host_address: str
    worker_address: str
    port: int = 0
    """The forwarder's port on ``host_address``."""

    def up(self) -> None:
        ip("link", "set", self.host_end, "up")

    def down(self) -> None:
        ip("link", "set", self.host_end, "down")


def _skip_unless_namespaces_work() -> None:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.skip("no `ip` command (iproute2)")
    probe = f"kbprobe{secrets.token_hex(3)}"
    try:
        made = ip("netns", "add", probe, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"`ip netns add` does not work here: {error}")
    if made.returncode != 0:
        pytest.skip(f"`ip netns add` does not work here: {made.stderr.strip()}")
    ip("netns", "del", probe, check=False)


def _free_prefix() -> str:
    """``10.213.N`` for a random N that no address or route here uses yet."""
    used = ip("-4", "-o", "addr").stdout + ip("-4", "route", "show", "table", "all").stdout
    for _ in range(50):
        prefix = f"10.213.{random.randrange(256)}"
        if f"{prefix}." not in used:
            return prefix
    pytest.skip("no free 10.213.N.0/24 subnet for the test's links")


def _make_link(link: Link) -> None:
    ip("netns", "add", link.namespace)
    ip("link", "add", link.host_end, "type", "veth", "peer", "name", link.worker_end)
    ip("link", "set", link.worker_end, "netns", link.namespace)
    ip("addr", "add", f"{link.host_address}/30", "dev", link.host_end)
    # While the link is down its connected route is gone: without this, the host would
    # send the forwarder's retransmissions to its default gateway instead of dropping them.
    ip("route", "add", "blackhole", link.subnet, "metric", "4242")
    link.up()
    inside = ("netns", "exec", link.namespace, "ip")
    ip(*inside, "addr", "add", f"{link.worker_address}/30", "dev", link.worker_end)
    ip(*inside, "link", "set", link.worker_end, "up")
    ip(*inside, "link", "set", "lo", "up")


def _remove_link(link: Link) -> None:
    """Best effort, each step on its own: a half-made link is removed as far as it got."""
    for args in (
        ("link", "del", link.host_end),  # takes its peer with it, wherever that is
        ("route", "del", "blackhole", link.subnet, "metric", "4242"),
        ("netns", "del", link.namespace),
    ):
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            ip(*args, check=False)


class Forwarder:
    """TCP from the links' host ends to PostgreSQL on 127.0.0.1, in a thread with its own
    event loop (the test's loop blocks while ``Fleet.wait_until_ready`` sleeps, and the
    workers need the database to get ready)."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="postgres-forwarder", daemon=True
        )
        self._servers: list[asyncio.Server] = []
        self._sessions: set[asyncio.Task[None]] = set()
        self._transports: set[asyncio.BaseTransport] = set()
        self.connections: dict[str, int] = {}
        """How many connections were forwarded, by listening address."""

    def start(self) -> None:
        self._thread.start()

    def listen(self, host: str) -> int:
        """Forward connections to ``host`` (on a free port, returned) to PostgreSQL."""
        future = asyncio.run_coroutine_threadsafe(self._listen(host), self._loop)
        return future.result(timeout=10)

    async def _listen(self, host: str) -> int:
        server = await asyncio.start_server(self._serve, host, 0)
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._transports.add(writer.transport)
        try:
            if len(self._sessions) >= FORWARDER_MAX_CONNECTIONS:
                return
            self._sessions.add(task)
            try:
                upstream_reader, upstream = await asyncio.wait_for(
                    asyncio.open_connection(*POSTGRES), FORWARDER_CONNECT_SECONDS
                )
            except (OSError, TimeoutError):
                return
            self._transports.add(upstream.transport)
            host = str(writer.get_extra_info("sockname")[0])
            self.connections[host] = self.connections.get(host, 0) + 1
            try:
                await asyncio.gather(_pipe(reader, upstream), _pipe(upstream_reader, writer))
            finally:
                upstream.transport.abort()
                self._transports.discard(upstream.transport)
        finally:
            writer.transport.abort()
            self._transports.discard(writer.transport)
            self._sessions.discard(task)

    def close(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    async def _close(self) -> None:
        for server in self._servers:
            server.close()
        for transport in list(self._transports):
            transport.abort()  # hung connections of a cut-off worker included
        for task in list(self._sessions):
            task.cancel()
        if self._sessions:
            await asyncio.wait(list(self._sessions), timeout=5)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until either side ends; then end the other too."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.transport.abort()


@dataclass
class Network:
    """Two namespaced workers' links and the forwarder that carries them to PostgreSQL."""

    fleet: Fleet
    links: list[Link]
    forwarder: Forwarder

    def start_worker(self, link: Link):
        url = make_url(self.fleet.database_url).set(host=link.host_address, port=link.port)
        return self.fleet.start_worker(
            wrap=("ip", "netns", "exec", link.namespace),
            database_url=url.render_as_string(hide_password=False),
        )


@pytest.fixture
def network(fleet: Fleet) -> Iterator[Network]:
    """Two links (namespace, veth pair, /30 subnet each) with the forwarder listening on
    their host ends; everything (the fleet's workers first) removed at the end."""
    _skip_unless_namespaces_work()
    suffix = secrets.token_hex(3)
    prefix = _free_prefix()
    links = [
        Link(
            namespace=f"kb{suffix}w{index}",
            host_end=f"kb{suffix}h{index}",
            worker_end=f"kb{suffix}n{index}",
            subnet=f"{prefix}.{4 * index}/30",
            host_address=f"{prefix}.{4 * index + 1}",
            worker_address=f"{prefix}.{4 * index + 2}",
        )
        for index in range(2)
    ]
    forwarder = Forwarder()
    try:
        for link in links:
            _make_link(link)
        forwarder.start()
        for link in links:
            link.port = forwarder.listen(link.host_address)
        yield Network(fleet, links, forwarder)
    finally:
        fleet.stop()  # the namespaced workers first; the fleet's teardown then finds them gone
        forwarder.close()
        for link in links:
            _remove_link(link)


async def test_a_worker_whose_network_link_is_cut_mid_song_has_its_late_result_rejected(
    fleet: Fleet, song, network: Network
):
    workers = [network.start_worker(link) for link in network.links]
    fleet.wait_until_ready(*workers)
    for worker in workers:  # `ip netns exec` execs in place: the pid is the worker's
        assert f"-{worker.pid}-" in fleet.worker_log(worker)
    front = await fleet.frontend()
    handle = await front.submit(request(song(75, "cable")))
    events = asyncio.create_task(_collect(handle))
    while not (isinstance(handle.state, Running) and handle.state.fraction > 0):
        assert not events.done()
        await asyncio.sleep(0.05)
    rows = await fleet.query("SELECT worker FROM separation_runs WHERE job_id = %s", handle.job_id)
    index = next(i for i, w in enumerate(workers) if f"-{w.pid}-" in str(rows[0][0]))
    cut_off, other, link = workers[index], workers[1 - index], network.links[index]

    link.down()
    try:
        result = await asyncio.wait_for(handle.result(), DELIVERY_SECONDS)
    finally:
        link.up()

    seen = await asyncio.wait_for(events, 10)
    assert [type(e) for e in seen].count(Done) == 1 and isinstance(seen[-1], Done)
    assert f"job {handle.job_id}: attempt 2 ended: done" in fleet.worker_log(other)
    attempt, outcome = await ledger(fleet, handle.job_id)
    assert attempt == 2 and outcome is not None and '"done"' in outcome
    assert all(path.stat().st_size > 0 for path in result.outputs.values())

    try:
        await wait_for(lambda: "was superseded" in fleet.worker_log(cut_off), SUPERSEDED_SECONDS)
    except AssertionError:
        pytest.fail(
            f"the cut-off worker never heard its attempt was superseded (forwarded "
            f"connections: {network.forwarder.connections}); its log ends:\n"
            + fleet.worker_log(cut_off)[-4000:]
        )
    assert f"job {handle.job_id}: attempt 1 ended" not in fleet.worker_log(cut_off)
    assert await ledger(fleet, handle.job_id) == (attempt, outcome)  # untouched
    assert len(fleet.blob_files("results")) == 5  # one result: 2 files, 2 stems, a manifest
    result.release()


async def _collect(handle: JobHandle) -> list[object]:
    return [event async for event in handle.events()]
