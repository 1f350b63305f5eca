"""How far a fast path's stems are from the reference stems, in decibels.

Every fast path (bf16/fp16 forward passes, batching, another device) must pass one
gate before it is used: on real music, each stem's relative error energy against the
reference (fp32, or ``demucs.apply.apply_model``) is at most -40 dB, i.e. the error
carries at most 1/10000 of the stem's energy, well below what a listener hears in a
karaoke track. The figure lives here, not in a test, because the tests
(``tests/separation/test_precision.py``) and the GPU check (``benchmarks/gpu_check.py``)
must measure it the same way.
"""

from __future__ import annotations

import numpy as np

FIDELITY_GATE_DB = -40.0
"""The most a fast path's stem may differ from the reference (relative error energy)."""


def relative_error_db(fast: np.ndarray, reference: np.ndarray) -> float:
    """``10 * log10(sum((fast - reference)^2) / sum(reference^2))``.

    Sums run in float64: over a 4-minute song of float32 samples a float32 sum loses the
    small error terms the figure is about. ``-inf`` when the two are identical.
    """
    error = float(np.sum((fast.astype(np.float64) - reference) ** 2))
    energy = float(np.sum(reference.astype(np.float64) ** 2))
    with np.errstate(divide="ignore"):
        return float(10 * np.log10(error / energy))
