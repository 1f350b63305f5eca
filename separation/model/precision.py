"""The number format of the model's forward pass: fp32, or bf16/fp16 where it pays.

Only the forward pass changes: inputs are built, normalised and overlap-added in fp32,
and each output is turned back into fp32 before it is accumulated, so a faster format
costs only the forward pass's own rounding. ``auto`` chooses bf16 where the hardware
computes it natively (a CPU with AVX512-BF16 or AMX tiles, a CUDA device that supports
bf16) and fp32 elsewhere; fp16 is never chosen by itself (its range is too small for
some activations without loss scaling), only when asked for.

The choice is asked of torch, not read from ``/proc/cpuinfo``: torch knows what its own
kernels can use. torch is imported only when a function runs: the settings name these
types, and ``karaoke-bot --help`` must not load torch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal, get_args

if TYPE_CHECKING:
    import torch

Precision = Literal["fp32", "bf16", "fp16"]
PrecisionSetting = Literal["auto", "fp32", "bf16", "fp16"]
PRECISIONS: tuple[str, ...] = get_args(PrecisionSetting)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively (what ``auto`` asks)."""
    import torch

    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return False


def resolve_precision(setting: str, device: torch.device) -> Precision:
    """The precision ``setting`` means on ``device``.

    Raises:
        ValueError: an unknown setting.
    """
    if setting == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if setting in ("fp32", "bf16", "fp16"):
        return setting  # type: ignore[return-value]  # narrowed by the test above
    raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {setting!r}")


@contextlib.contextmanager
def forward_precision(precision: Precision, device: torch.device) -> Iterator[None]:
    """Run the enclosed forward pass in ``precision`` (autocast; fp32: unchanged)."""
    if precision == "fp32":
        yield
        return
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield
