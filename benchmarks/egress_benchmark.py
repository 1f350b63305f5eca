"""What the egress guard costs a download: a local file fetched directly and through
:class:`bot.links.proxy.EgressProxy`, plain HTTP, in the same run (issue 25).

A server in a child process streams ``--megabytes`` (50 by default) of zeros on
127.0.0.1; httpx downloads it ``--runs`` times (3) each way, alternating, and the
median seconds and MB/s of each way, and the overhead, are printed. The proxy runs on
the client's event loop, as it does in the bot.

    PYTHONPATH=$PWD python benchmarks/egress_benchmark.py
    PYTHONPATH=$PWD python benchmarks/egress_benchmark.py --megabytes 5 --runs 1
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from functools import partial
from ipaddress import ip_network

import httpx

from bot.links.egress import EgressPolicy
from bot.links.proxy import EgressProxy
from tests.support.egress import serve_bytes


def _serve(size: int, ready: multiprocessing.SimpleQueue[int]) -> None:
    async def main() -> None:
        server = await asyncio.start_server(partial(serve_bytes, size), "127.0.0.1", 0)
        ready.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


async def _download(url: str, proxy: str | None) -> tuple[float, int]:
    started = time.perf_counter()
    got = 0
    async with httpx.AsyncClient(proxy=proxy, trust_env=False, timeout=60) as client:
        async with client.stream("GET", url) as response:
            response.raise_for_status()
            async for chunk in response.aiter_raw(1 << 20):
                got += len(chunk)
    return time.perf_counter() - started, got


async def measure(port: int, size: int, runs: int) -> dict[str, list[float]]:
    """Seconds of each download, direct and proxied, alternating so both see the same
    machine state."""
    url = f"http://127.0.0.1:{port}/song.flac"
    policy = EgressPolicy((ip_network("127.0.0.1/32"),), frozenset({port}))
    times: dict[str, list[float]] = {"direct": [], "proxied": []}
    async with EgressProxy(policy, connect_timeout=5, idle_timeout=30) as proxy:
        for _ in range(runs):
            for way, via in (("direct", None), ("proxied", proxy.url)):
                seconds, got = await _download(url, via)
                if got != size:
                    raise RuntimeError(f"{way}: got {got} bytes of {size}")
                times[way].append(seconds)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.megabytes * 1_000_000
    ready: multiprocessing.SimpleQueue[int] = multiprocessing.SimpleQueue()
    server = multiprocessing.Process(target=_serve, args=(size, ready), daemon=True)
    server.start()
    try:
        times = asyncio.run(measure(ready.get(), size, args.runs))
    finally:
        server.terminate()
        server.join(5)
    direct, proxied = (statistics.median(times[way]) for way in ("direct", "proxied"))
    print(f"{args.megabytes} MB over plain HTTP on 127.0.0.1, median of {args.runs}")
    print(f"{'way':<10}{'seconds':>10}{'MB/s':>10}   runs")
    for way, median in (("direct", direct), ("proxied", proxied)):
        runs = ", ".join(f"{seconds:.3f}" for seconds in times[way])
        print(f"{way:<10}{median:>10.3f}{args.megabytes / median:>10.1f}   {runs}")
    print(f"overhead  {proxied - direct:+.3f} s ({(proxied / direct - 1) * 100:+.0f} %)")


if __name__ == "__main__":
    main()
