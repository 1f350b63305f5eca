"""The progress of ``karaoke-bot separate``: a bar per input on a terminal, nothing in a pipe."""

from __future__ import annotations

import sys


class ProgressBar:
    """A tqdm bar per input on a terminal; silent when stderr is redirected."""

    def __init__(self, label: str, position: int) -> None:
        self._bar = None
        self._label = label[:40]
        if sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=100, desc=self._label, unit="%", leave=False, position=position)

    def waiting(self, position: int) -> None:
        if self._bar is not None:
            self._bar.set_description(f"{self._label} (queued #{position})")

    def update_fraction(self, fraction: float) -> None:
        if self._bar is not None:
            self._bar.set_description(self._label)
            self._bar.n = round(fraction * 100)
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
