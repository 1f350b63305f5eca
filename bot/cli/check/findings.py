"""What a check finds: one line, OK, WARN or FATAL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["OK", "WARN", "FATAL"]


@dataclass(frozen=True)
class Finding:
    """The result of one check, printed as one line."""

    level: Level
    subject: str
    message: str

    def line(self) -> str:
        return f"{self.level:<5} {self.subject}: {self.message}"


def one_line_reason(exc: BaseException) -> str:
    """storage's own reason, else the driver's first line (not SQLAlchemy's SQL dump)."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        return reason
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
