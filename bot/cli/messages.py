"""Every sentence the command line says, in one place.

The chat flow speaks to a user who sent a song (``bot.chat.conversation.messages``: "Send an
MP3..."); the
command line speaks to the operator who typed a command, about files and settings. Both
start from the same typed errors, so a new error kind changes one line here.

Every problem is one line on stderr, prefixed like argparse's own usage errors
(``karaoke-bot: error: ...``), whichever command wrote it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from bot.chat.conversation.messages import megabytes
from separation.errors import (
    AudioInputError,
    AudioTooLargeError,
    AudioTooLongError,
    SeparationError,
)

PROG = "karaoke-bot"

# Exit codes (docs/pages/using/command-line.md documents them).
EXIT_OK = 0
EXIT_FAILED = 1
"""The command ran, but a job failed (an input could not be separated, a user not found)."""
EXIT_USAGE = 2
"""A usage, configuration or environment problem: nothing was done."""
EXIT_INTERRUPTED = 130


class UsageError(ValueError):
    """A command refused its arguments or settings before doing anything (exit 2).

    Raised where the problem is understood (a command's option, a file it was given);
    ``bot.cli.main`` prints it as one line.
    """


INTERRUPTED = "interrupted"
NO_PLATFORM = (
    "no chat platform is enabled: set KARAOKE_TELEGRAM_TOKEN or KARAOKE_DISCORD_TOKEN "
    "(a platform whose token is set is enabled unless the config says enabled = false)"
)


def no_token(platform: str, variable: str) -> str:
    """A platform is enabled without its token (said before anything is created)."""
    return (
        f"{platform.capitalize()} is enabled but no token is set: "
        f"set {variable} or {platform}.token"
    )


WORKER_NEEDS_DISTRIBUTED = (
    'worker needs backend.kind = "distributed" (and a PostgreSQL database.url) in the config; '
    "with the local backend, run separates songs itself"
)
NOTHING_TO_GRANT = (
    "nothing to grant: give --songs, --minutes, --max-song-minutes, --concurrent or --reset"
)


def error(message: str) -> None:
    """Print one problem, prefixed like argparse's usage errors."""
    print(f"{PROG}: error: {message}", file=sys.stderr)


def note(message: str) -> None:
    """Print a remark that is not an error (the command goes on)."""
    print(f"{PROG}: {message}", file=sys.stderr)


def bad_option(option: str, reason: str, setting: str) -> str:
    return f"argument {option}: {reason} (like {setting} in the config file)"


def no_such_file(path: Path) -> str:
    return f"{path}: no such file"


def is_a_directory(path: Path) -> str:
    return f"{path}: is a directory, not an audio file"


def not_readable(path: Path, reason: str) -> str:
    return f"{path}: cannot be read ({reason})"


def output_is_a_file(path: Path) -> str:
    return f"argument -o/--output-dir: {path} is a file, not a folder"


def output_not_usable(path: Path, reason: str) -> str:
    return f"argument -o/--output-dir: cannot create {path} ({reason})"


def nothing_separated(count: int) -> str:
    problems = "that input" if count == 1 else f"those {count} inputs"
    return f"nothing was separated: fix {problems} and run again"


def same_name(path: Path, first: Path, stem: str) -> str:
    return (
        f"{path} has the same name as {first}: its outputs are named "
        f"'{stem} - <stem>' so neither overwrites the other"
    )


def input_failed(path: Path, exc: AudioInputError | SeparationError | OSError) -> str:
    """One line naming the input and what is wrong with it, for the operator."""
    return f"{path}: {_describe(exc)}"


def _describe(exc: AudioInputError | SeparationError | OSError) -> str:
    if isinstance(exc, AudioTooLongError):
        return f"too long: {_first_sentence(exc)} (audio.max_duration_seconds)"
    if isinstance(exc, AudioTooLargeError):
        # Sizes read the same here as in the chats ("31 MB", "2.5 MB").
        size, limit = megabytes(exc.size_bytes), megabytes(exc.limit_bytes)
        return f"too big: {size}; the limit is {limit} (audio.max_input_bytes)"
    if isinstance(exc, AudioInputError):
        return _INPUT_PROBLEMS.get(exc.kind, str(exc))
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _first_sentence(exc: AudioInputError) -> str:
    # "That song is 20:00 long; the limit is 15:00. Please send..." -> "20:00 long; ..."
    text = str(exc).split(". ")[0].rstrip(".")
    return text.removeprefix("That song is ")


_INPUT_PROBLEMS = {
    "empty": "empty: it contains no sound at all",
    "not_audio": "not an audio or video file ffmpeg can read",
    "corrupt": "damaged or cut off: ffmpeg could not decode it",
    "input_limit": "reading it took too long or needed too much memory "
    "(audio.probe_timeout_seconds, audio.ffmpeg_memory_mb)",
}


def unknown_model(name: str, known: Iterable[str]) -> str:
    return (
        f"unknown model {name!r}: known models are {', '.join(known)} "
        "(a model of your own goes in a folder given by model.repo / --model-repo)"
    )


def cannot_download(name: str, reason: str) -> str:
    return f"cannot download {name}: {reason}"


def cannot_write_model(folder: Path, reason: str) -> str:
    return f"argument --repo: cannot write a model into {folder} ({reason})"
