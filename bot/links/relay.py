"""Bytes both ways between a proxy's client and its upstream, until the upstream has
answered or the pair has been idle too long.

A download can run for minutes with the client silent, so idleness is judged on the
pair (the last byte either way), not per direction; a stalled server (slowloris) ends
the tunnel after ``idle_timeout`` with no byte either way. When one side finishes
sending, the other is told (half-close) and may still answer.

Waits use ``asyncio.timeout``, not ``wait_for``: on Python 3.11 ``wait_for`` can swallow
a cancellation that lands as its read completes, and a pump cancelled that way kept a
tunnel open past the proxy's lifetime limit until the idle timeout.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

_CHUNK = 256 * 1024


@dataclass
class RelayCounts:
    """Bytes relayed each way, for logs and figures; private to one relay."""

    upstream_bytes: int = 0
    downstream_bytes: int = 0
    last_activity: float = field(default_factory=time.monotonic)


async def relay(
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    *,
    idle_timeout: float,
) -> RelayCounts:
    """Copy client→upstream and upstream→client until the upstream ends or the pair idles."""
    counts = RelayCounts()
    up = asyncio.create_task(_pump(client[0], upstream[1], counts, "up", idle_timeout))
    down = asyncio.create_task(_pump(upstream[0], client[1], counts, "down", idle_timeout))
    pumps = [up, down]
    try:
        # The tunnel ends with the upstream's answer (or an error either way): a plain
        # request was sent with ``Connection: close``, and a client that half-closed
        # still gets the rest of the answer first.
        done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        if down not in done and up.exception() is None:
            await down
    except (OSError, TimeoutError):
        pass
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
    return counts


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    counts: RelayCounts,
    direction: str,
    idle_timeout: float,
) -> None:
    while True:
        try:
            async with asyncio.timeout(_idle_left(counts, idle_timeout)):
                chunk = await reader.read(_CHUNK)
        except TimeoutError:
            if time.monotonic() - counts.last_activity >= idle_timeout:
                raise
            continue
        if not chunk:
            if writer.can_write_eof() and not writer.is_closing():
                writer.write_eof()
            return
        counts.last_activity = time.monotonic()
        if direction == "up":
            counts.upstream_bytes += len(chunk)
        else:
            counts.downstream_bytes += len(chunk)
        writer.write(chunk)
        await writer.drain()


def _idle_left(counts: RelayCounts, idle_timeout: float) -> float:
    return max(0.0, idle_timeout - (time.monotonic() - counts.last_activity)) + 0.001
