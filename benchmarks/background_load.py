"""Busy-loop processes that keep the machine's cores busy while a benchmark measures.

A user's bot or command rarely has the machine to itself. ``busy_loops(n)`` starts ``n``
Python processes that spin until the block ends (killed then, never left behind), at
normal priority: the fixed outside load of issue 26's "under load" figures.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

SPIN = "while True:\n    pass\n"


@contextlib.contextmanager
def busy_loops(count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` spinning processes for the duration of the block (none for 0)."""
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(count)]
    try:
        yield spinners
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()
