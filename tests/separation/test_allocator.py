"""malloc set up for the model: a thread's large allocations are reused, not re-faulted."""

from __future__ import annotations

import subprocess
import sys

import pytest

from separation.model.allocator import keep_memory_mapped

# In a fresh process (an arena is chosen at a thread's first allocation): a worker
# thread allocates and frees 256 MB twice; the page faults of the second round say
# whether the memory was kept or handed back and faulted in again.
PROBE = """
import resource, sys, threading
from separation.model.allocator import keep_memory_mapped
tuned = sys.argv[1] == "tuned" and keep_memory_mapped()
def rounds(out):
    for _ in range(2):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = b"\x01" * (256 * 2**20)
        del block
        out.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
faults = []
thread = threading.Thread(target=rounds, args=(faults,))
thread.start(); thread.join()
print(tuned, faults[1])
"""


def _second_round_faults(mode: str) -> tuple[str, int]:
    output = subprocess.run(
        [sys.executable, "-c", PROBE, mode], check=True, capture_output=True, text=True
    ).stdout.split()
    return output[0], int(output[1])


@pytest.mark.skipif(not keep_memory_mapped(), reason="needs glibc's mallopt")
def test_a_tuned_process_reuses_a_threads_large_allocations():
    pages = 256 * 2**20 // 4096
    assert _second_round_faults("default") == ("False", pytest.approx(pages, rel=0.2))
    tuned, faults = _second_round_faults("tuned")
    assert tuned == "True" and faults < pages // 100
