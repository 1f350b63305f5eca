"""What ``karaoke-bot separate --video [--lyrics FILE]`` checks before any work, without torch.

A lyrics file is text from anywhere (a download, a friend, a copy of a web page): it is
read bounded (its size is checked before it is read, and never more than the cap is
read, so ``--lyrics /dev/zero`` costs nothing), cleaned and parsed by
``separation.lyrics.parse`` exactly as a chat user's lyrics are, and refused in one
sentence before torch is imported and the model runs: a mistake costs a second, not a
separation. The cleaned text, not the file, is what the video request carries.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli import messages
from bot.cli.messages import UsageError
from separation.errors import LyricsInputError
from separation.lyrics.model import LyricsSource
from separation.lyrics.parse import clean_lyrics_text, parse_lyrics
from separation.video.request import VideoLook

if TYPE_CHECKING:
    from bot.settings import Settings


@dataclasses.dataclass(frozen=True)
class LyricsFile:
    """The words ``--lyrics`` gave, checked."""

    path: Path
    """As typed: named in messages."""
    text: str
    """Cleaned and bounded by ``separation.lyrics.parse.clean_lyrics_text``."""


@dataclasses.dataclass(frozen=True)
class VideoPlan:
    """A karaoke video is wanted for every input: how it looks and whose words it shows."""

    look: VideoLook
    align: bool
    """``lyrics.alignment``: untimed words may be timed on the separated vocals."""
    speech_model: bool
    """``lyrics.speech_model``: aligning may time words with the offline speech model."""
    lyrics_file: LyricsFile | None
    """None: each song's own tags, else LRCLIB (``bot.cli.separate_video``)."""


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    """``--video``, ``--lyrics FILE`` and ``--no-lrclib`` (``lyrics.lrclib`` for one run)."""
    video = parser.add_argument_group(
        "karaoke video",
        "also write '<stem> - karaoke.mp4' (with the controls above); the words come from "
        "--lyrics, else the song's tags, else LRCLIB (lyrics.lrclib); exit 1 if none has them",
    )
    video.add_argument("--video", action="store_true", help="make the karaoke video too")
    video.add_argument(
        "--lyrics",
        type=Path,
        metavar="FILE",
        help="its words: an .lrc (times per line or word) or a .txt (timed on the vocals)",
    )
    video.add_argument(
        "--no-lrclib",
        dest="lrclib",
        action="store_const",
        const=False,
        help="never ask LRCLIB for the words (like lyrics.lrclib = false)",
    )


def video_plan(args: argparse.Namespace, settings: Settings) -> VideoPlan | None:
    """The video ``--video`` asks for (None without it), its lyrics file checked.

    Raises:
        UsageError: ``--lyrics`` without ``--video`` or with several inputs (whose words
            would all be the same), or a lyrics file that cannot be used.
    """
    if args.lyrics is not None and not args.video:
        raise UsageError(messages.LYRICS_WITHOUT_VIDEO)
    if not args.video:
        return None
    if args.lyrics is not None and len(set(map(_identity, args.inputs))) > 1:
        raise UsageError(messages.LYRICS_FOR_ONE_SONG)
    align = settings.lyrics.alignment
    lyrics_file = None if args.lyrics is None else read_lyrics_file(args.lyrics, align=align)
    return VideoPlan(settings.video.look(), align, settings.lyrics.speech_model, lyrics_file)


def _identity(item: Path | str) -> Path | str:
    """A file is one song however its path is spelled; a link, by its text."""
    return item if isinstance(item, str) else item.resolve()


def read_lyrics_file(path: Path, *, align: bool) -> LyricsFile:
    """``path``'s words, cleaned, known to parse into at least one line.

    Args:
        path: an ``.lrc`` (LRC or enhanced LRC) or ``.txt`` (plain text) file; the
            content decides, not the name.
        align: untimed words may be timed on the vocals (``lyrics.alignment``); when
            they may not, plain text is refused now rather than after the separation.

    Raises:
        UsageError: missing, a folder, unreadable, too big, not text, no words.
    """
    raw = _bounded_read(path)

    try:
        text: str = clean_lyrics_text(raw)
        lyrics = parse_lyrics(text, source=LyricsSource.USER)
    except LyricsInputError as exc:
        raise UsageError(messages.lyrics_file_problem(path, messages.lyrics_problem(exc))) from None
    if not lyrics.is_timed and not align:
        raise UsageError(
            messages.lyrics_file_problem(path, messages.LYRICS_UNTIMED_WITHOUT_ALIGNMENT)
        )
    return LyricsFile(path, text)


def _bounded_read(path: Path) -> bytes:
    """At most the cap's worth of ``path``, refused by its size before it is read.

    The cap is the chat's (a Telegram or Discord lyrics file is downloaded to the same
    bound), so a file the bot accepts in a chat is accepted here and the other way round.
    """
    from bot.chat.conversation.types import MAX_LYRICS_DOWNLOAD_BYTES as limit

    def refused(reason: str) -> UsageError:
        return UsageError(messages.lyrics_file_problem(path, reason))

    try:
        if path.is_dir():
            raise refused(messages.LYRICS_FILE_IS_A_FOLDER)
        size = path.stat().st_size
        if size > limit:  # a regular file says its size: not one byte of it is read
            raise refused(messages.lyrics_file_too_big(limit, size))
        with path.open("rb") as file:  # a device or a pipe does not: read one byte past
            raw = file.read(limit + 1)
    except FileNotFoundError:
        raise refused(messages.NO_SUCH_LYRICS_FILE) from None
    except OSError as exc:
        raise refused(messages.lyrics_file_unreadable(exc.strerror or str(exc))) from None
    if len(raw) > limit:
        raise refused(messages.lyrics_file_too_big(limit))
    return raw
