"""Log configuration: one line per event, optionally JSON for log collectors.

The privacy page (docs/pages/operating/privacy.md) promises that logs never carry users'
display names, original file names or message contents. Our own packages keep to that at
every level, but libraries do not at DEBUG: python-telegram-bot logs whole updates
(names, file names, captions), aiosqlite logs every call with its SQL parameters,
discord.py logs gateway payloads. So ``-v`` (DEBUG) is debug logging for our packages
only: a handler filter drops every record below INFO from any other logger, listed here
or not, and the root level stays at INFO so such records are not even built. Libraries'
INFO and above still pass (start-up, reconnects, failures), through the same secret
redactor as everything else.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from bot.ops.secrets import RedactSecretsFilter


class JsonFormatter(logging.Formatter):
    """One JSON object per line with the standard fields and any ``extra`` values."""

    _STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update(
            {
                key: value
                for key, value in vars(record).items()
                if key not in self._STANDARD and not key.startswith("_")
            }
        )
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


OWN_PACKAGES = ("bot", "separation", "storage", "__main__")
"""Loggers whose DEBUG records may be written (a package covers its modules)."""

# Libraries whose INFO records are dropped too, at every verbosity: SQLAlchemy logs each
# statement with its parameters (display names, file names) at INFO, so only its
# warnings are operational; alembic logs one line per plugin it sets up on import (now
# that the store is imported when first used, after logging is configured).
_WARNINGS_ONLY = ("sqlalchemy", "alembic.runtime.plugins")

# Libraries that log one INFO line per HTTP request, which would drown our one-line
# events. At -v httpx may speak: a request line carries the method, the URL and the
# status. Telegram's URLs hold the bot token (masked by the redactor) and, for
# downloads, Telegram's own file path (``music/file_3.mp3``), never the user's file
# name, a display name or a message text (those travel in request bodies, which httpx
# logs at DEBUG only). Seeing the bot talk to the API is what -v is for.
_NOISY = ("httpx", "httpcore", "urllib3", "huggingface_hub")

# Libraries known to log users' data at DEBUG. The filter drops such records anyway;
# setting their level spares building them even if something lowered it before.
_LEAKY_AT_DEBUG = ("telegram", "discord", "aiosqlite")


class LibraryDebugFilter(logging.Filter):
    """Drops records below INFO (WARNING for SQLAlchemy) from every logger but ours.

    This, not the loggers' levels, is the guarantee that -v cannot leak users' data
    through a library: any library may set its own logger's level, and a logger nobody
    listed here (a new dependency) would otherwise pass DEBUG records on.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING or _within(record.name, OWN_PACKAGES):
            return True
        return record.levelno >= logging.INFO and not _within(record.name, _WARNINGS_ONLY)


def _level_number(level: str) -> int:
    number = logging.getLevelNamesMapping().get(level.upper())
    if number is None:
        raise ValueError(f"unknown log level {level!r}")
    return number


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(f"{package}.") for package in packages)


def configure_logging(
    level: str = "INFO", *, json_lines: bool = False, secrets: Iterable[str] = ()
) -> None:
    """One handler on stderr; every record passes the secret redactor (see bot.ops.secrets).

    ``level`` applies to our own packages; other loggers never go below INFO (see the
    module docstring), and per-request HTTP lines appear only at DEBUG.
    """
    handler = logging.StreamHandler(sys.stderr)
    # First, so dropped records are never formatted for redaction.
    handler.addFilter(LibraryDebugFilter())
    handler.addFilter(RedactSecretsFilter(set(secrets)))
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    own_level = _level_number(level)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(own_level, logging.INFO))
    for package in OWN_PACKAGES:
        logging.getLogger(package).setLevel(own_level)
    library_level = root.level
    for leaky in _LEAKY_AT_DEBUG:
        logging.getLogger(leaky).setLevel(library_level)
    for strict in _WARNINGS_ONLY:
        logging.getLogger(strict).setLevel(max(own_level, logging.WARNING))
    quiet = logging.INFO if own_level <= logging.DEBUG else max(own_level, logging.WARNING)
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(quiet)
