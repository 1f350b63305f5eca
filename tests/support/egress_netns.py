"""Hostile link targets against the egress guard, run inside a private network namespace.

Run as ``unshare --net -- python -m tests.support.egress_netns`` (as root): the new
namespace has only its own loopback, to which 10.0.0.1 and 169.254.169.254 are added,
so internal listeners on port 80 and 443 exist there as they would on a cloud host and
nothing outside can be reached. Prints one JSON object: for each case the proxy's
answer, the seconds to it, the bytes the client got, and how many connections the
internal listeners saw meanwhile. Exits 77 when the namespace cannot be set up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from ipaddress import ip_network
from typing import Any

import httpx

from bot.links.egress import EgressPolicy
from bot.links.proxy import EgressProxy
from tests.support.egress import Listener, ask_proxy, listening, redirect_response

INTERNAL_HOSTS = ("127.0.0.1", "::1", "10.0.0.1", "169.254.169.254")
PUBLIC_STAND_IN = "127.0.0.2"
"""Plays a public server in the redirect cases (allowed by ``allowed_networks``)."""

PLAIN_TARGETS = (
    "http://127.0.0.1/",
    "http://[::1]/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://0x7f.0.0.1/",
    "http://127.1/",
    "http://localhost/",
    "http://0.0.0.0/",
    "http://10.0.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://127.0.0.1:22/",
)
TUNNEL_TARGETS = (
    "https://127.0.0.1/",
    "https://[::1]/",
    "https://2130706433/",
    "https://localhost/",
    "https://10.0.0.1/",
    "https://169.254.169.254/",
)
REDIRECT_TARGETS = (
    "http://127.0.0.1/",
    "http://10.0.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/",
    "http://2130706433/",
)


def client_proxy_url(client: httpx.AsyncClient) -> str:
    """The proxy URL a client was made with (kept on the client for the raw fallback)."""
    return str(client.headers["x-test-proxy"])


def _set_up_namespace() -> None:
    for command in (
        ["ip", "link", "set", "lo", "up"],
        ["ip", "addr", "add", "10.0.0.1/32", "dev", "lo"],
        ["ip", "addr", "add", "169.254.169.254/32", "dev", "lo"],
    ):
        subprocess.run(command, check=True, capture_output=True, timeout=10)


async def _case(client: httpx.AsyncClient, url: str, listeners: list[Listener]) -> dict[str, Any]:
    before = sum(listener.connections for listener in listeners)
    started = time.perf_counter()
    status: int | None = None
    error: str | None = None
    size = 0
    via = "httpx"
    try:
        response = await client.get(url)
        status, size = response.status_code, len(response.content)
    except httpx.InvalidURL:
        via = "raw"
        answer = await ask_proxy(client_proxy_url(client), f"GET {url} HTTP/1.1\r\n\r\n".encode())
        status, size = answer.status, len(answer.body)
    except httpx.ProxyError as proxy_error:
        error = str(proxy_error)
        status = int(error.split()[0]) if error[:3].isdigit() else None
    except httpx.HTTPError as other:
        error = f"{type(other).__name__}: {other}"
    return {
        "url": url,
        "client": via,
        "status": status,
        "error": error,
        "seconds": time.perf_counter() - started,
        "bytes": size,
        "internal_connections": sum(listener.connections for listener in listeners) - before,
    }


async def _run() -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as stack:
        listeners = [
            await stack.enter_async_context(listening(host, port))
            for host in INTERNAL_HOSTS
            for port in (80, 443, 22)
        ]

        def to_internal(path: str) -> bytes:
            return redirect_response(REDIRECT_TARGETS[int(path.strip("/"))])

        public = await stack.enter_async_context(listening(PUBLIC_STAND_IN, 80, to_internal))
        results: dict[str, Any] = {"plain": [], "tunnel": [], "redirect": []}
        async with EgressProxy(EgressPolicy(), connect_timeout=2, idle_timeout=2) as proxy:
            async with httpx.AsyncClient(
                proxy=proxy.url, trust_env=False, verify=False, headers={"x-test-proxy": proxy.url}
            ) as client:
                for url in PLAIN_TARGETS:
                    results["plain"].append(await _case(client, url, listeners))
                for url in TUNNEL_TARGETS:
                    results["tunnel"].append(await _case(client, url, listeners))
            results["default_refusals"] = len(proxy.refusals)
        allow_stand_in = EgressPolicy(allowed_networks=(ip_network(f"{PUBLIC_STAND_IN}/32"),))
        async with EgressProxy(allow_stand_in, connect_timeout=2, idle_timeout=2) as proxy:
            async with httpx.AsyncClient(
                proxy=proxy.url, trust_env=False, follow_redirects=True
            ) as client:
                for index, target in enumerate(REDIRECT_TARGETS):
                    case = await _case(client, f"http://{PUBLIC_STAND_IN}/{index}", listeners)
                    results["redirect"].append({**case, "to": target})
            results["redirect_refusals"] = [refusal.host for refusal in proxy.refusals]
        results["public_connections"] = public.connections
        results["total_internal_connections"] = sum(item.connections for item in listeners)
        return results


def main() -> int:
    try:
        _set_up_namespace()
    except (OSError, subprocess.SubprocessError) as error:
        print(json.dumps({"setup_failed": str(error)}))
        return 77
    print(json.dumps(asyncio.run(_run())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
