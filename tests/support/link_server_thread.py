"""The local link server (``tests.support.link_servers``) on a loop of its own thread.

``karaoke-bot separate URL`` is a synchronous command that runs its own event loop
(``asyncio.run``), so a test that calls it cannot serve the links from its own loop: the
server runs on a second thread instead. The test fills the server's content before the
command runs and reads its counters after the command returned.

Usage::

    with link_server_in_a_thread() as server:
        url = server.add_media("song.mp3", song_bytes)
        main(["separate", url, ...])
        assert server.requests["/media/song.mp3"] == 1
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from tests.support.link_servers import LinkServer, running_link_server

START_TIMEOUT_SECONDS = 10.0


@contextlib.contextmanager
def link_server_in_a_thread() -> Iterator[LinkServer]:
    """A started :class:`LinkServer` served by a background thread, stopped on exit."""
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    found: list[LinkServer] = []

    async def serve() -> None:
        async with running_link_server() as server:
            found.append(server)
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    try:
        if not ready.wait(START_TIMEOUT_SECONDS):
            raise RuntimeError("the link server did not start")
        yield found[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(START_TIMEOUT_SECONDS)
        loop.close()
