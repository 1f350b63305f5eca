"""Every hostile target of issue 25 against the default policy, on ports 80 and 443,
with real listeners on 127.0.0.1, [::1], 10.0.0.1 and 169.254.169.254 that must see
zero connections.

Those listeners need addresses this host must not grow (a metadata address on the
host's own loopback would capture its cloud's metadata service), so the cases run in a
private network namespace (``tests/support/egress_netns.py`` under ``unshare --net``),
which also keeps them off any real network. Root only; skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
QUICK = 0.5
"""Seconds within which each refusal is answered (about 1 ms measured)."""


@pytest.fixture(scope="module")
def hostile() -> dict[str, Any]:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs root, unshare and ip for a private network namespace")
    run = subprocess.run(
        ["unshare", "--net", "--", sys.executable, "-m", "tests.support.egress_netns"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    if run.returncode == 77 or "unshare failed" in run.stderr:
        pytest.skip(f"no private network namespace here: {run.stdout or run.stderr}"[:300])
    assert run.returncode == 0, run.stderr[-2000:]
    result: dict[str, Any] = json.loads(run.stdout)
    return result


def _cases(hostile: dict[str, Any], group: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = hostile[group]
    assert cases, group
    return cases


@pytest.mark.parametrize("group", ["plain", "tunnel", "redirect"])
def test_each_hostile_target_is_refused_quickly_with_no_connection(
    hostile: dict[str, Any], group: str
) -> None:
    for case in _cases(hostile, group):
        assert case["status"] == 403, case
        assert case["internal_connections"] == 0, case
        assert case["seconds"] < QUICK, case


def test_no_internal_listener_saw_any_connection(hostile: dict[str, Any]) -> None:
    assert hostile["total_internal_connections"] == 0


def test_each_refusal_is_recorded(hostile: dict[str, Any]) -> None:
    assert hostile["default_refusals"] == len(hostile["plain"]) + len(hostile["tunnel"])
    assert len(hostile["redirect_refusals"]) == len(hostile["redirect"])


def test_redirects_were_followed_from_the_allowed_server(hostile: dict[str, Any]) -> None:
    assert hostile["public_connections"] == len(hostile["redirect"])
