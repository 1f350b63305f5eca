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

from separation.errors import (
    AudioInputError,
    AudioTooLargeError,
    AudioTooLongError,
    LyricsInputError,
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
NO_CACHE_IN_A_FLEET = (
    'argument --no-cache: with backend.kind = "distributed" the songs go to the fleet, '
    "whose workers share one result cache; --no-cache is for a local pool"
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
        # Sizes read the same here as in the chats ("31 MB", "2.5 MB"). Imported here:
        # the chat's messages bring the store (SQLAlchemy) with them, and --help must not.
        from bot.chat.conversation.messages import megabytes

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


def model_folder_missing(folder: Path) -> str:
    return f"model folder {folder} (--model-repo / model.repo) does not exist or is not a folder"


def model_not_in_folder(name: str, folder: Path, available: list[str]) -> str:
    return (
        f"unknown model {name!r}: {folder} has no {name}.yaml or {name}*.th "
        f"(models there: {', '.join(available) or 'none'})"
    )


def weights_missing(name: str) -> str:
    return (
        f"weights for model {name!r} are not on this machine (not in the HuggingFace cache): "
        f"`karaoke-bot models download {name}` fetches them (on a machine with internet "
        "access; copy ~/.cache/huggingface or $HF_HOME over), or point --model-repo at a "
        "folder in Demucs' --repo layout"
    )


def status(message: str) -> None:
    """Print where things are after the work (stderr, unprefixed: it is neither a problem
    nor a remark about the command; the lines starting ``karaoke-bot:`` stay those)."""
    print(message, file=sys.stderr)


def cache_summary(folder: Path, size_bytes: int, limit_bytes: int, hours: float) -> str:
    return (
        f"results cached in {folder} ({_size(size_bytes)} of {_size(limit_bytes)}, "
        f"kept {hours:g} h; --no-cache skips it)"
    )


def _size(size_bytes: int) -> str:
    from bot.chat.conversation.messages.numbers import megabytes  # the chat's: not at import

    return f"{size_bytes / 1e9:.1f} GB" if size_bytes >= 1e9 else megabytes(size_bytes)


def model_help(name: str | None) -> str:
    """``--model``'s help; ``None`` before ``--help`` reads the config in effect."""
    return (
        f"model name (default from config: {name})" if name else "model name (default from config)"
    )


def bad_guide(text: str) -> str:
    return f"not a level: {text!r} (a level in dB from -30 to -6, or off)"


# --- issue 23: the command line answers at once, in one line ----------------------------


def usage_error(message: str, command: str) -> str:
    """argparse's complaint as one line, pointing at the help of the command that refused.

    ``command`` is the refusing parser's ``prog`` (``karaoke-bot separate``).
    """
    return f"{PROG}: error: {message}; see `{command} --help`"


def no_database_yet(path: Path) -> str:
    """``stats`` where the bot has not run: nothing to count, and nothing is created."""
    return f"no songs yet: there is no database at {path} (the bot creates it when it runs)"


def no_such_user_yet(ref: str, path: Path) -> str:
    return f"no such user: {ref} (there is no database at {path} yet)"


def not_a_model_folder(folder: Path) -> str:
    return f"argument --repo: {folder} is not a folder (make one with models make-random)"


# --- issue 24: separate --video, the karaoke video --------------------------------------

LYRICS_WITHOUT_VIDEO = (
    "argument --lyrics: the words are for the karaoke video; add --video (or drop --lyrics)"
)


def lyrics_file_problem(path: Path, reason: str) -> str:
    """``--lyrics FILE`` refused before any work: ``reason`` is one sentence (a chat
    user's, from ``separation.lyrics``, or one of the reasons below)."""
    return f"argument --lyrics: {path}: {reason.rstrip('.')}"


def lyrics_file_too_big(limit_bytes: int, size_bytes: int | None = None) -> str:
    """``size_bytes``: None when the file does not say (a device or a pipe)."""
    size = f"more than {_kilobytes(limit_bytes)}" if size_bytes is None else _kilobytes(size_bytes)
    return (
        f"too big for a lyrics file: {size} (the limit is {_kilobytes(limit_bytes)}; "
        "a whole album's .lrc is under 50 KB)"
    )


def _kilobytes(size_bytes: int) -> str:
    """Text files are counted in KB (``0.3 MB`` would blur 256 KB and 300 KB)."""
    return _size(size_bytes) if size_bytes >= 10_000_000 else f"{-(-size_bytes // 1000)} KB"


def lyrics_problem(exc: LyricsInputError) -> str:
    """Why lyrics were refused, for the operator: ``separation.lyrics``' own sentence, but
    in a terminal's words where the chat's would not fit ("send them as a message")."""
    return _LYRICS_PROBLEMS.get(exc.kind, exc.user_message)


_LYRICS_PROBLEMS = {
    "lyrics_not_text": "not text: save it as UTF-8 (UTF-16 with a BOM and Western cp1252 "
    "are read too)",
    "lyrics_no_words": "no words to sing in it (only times, tags or blank lines)",
}
NO_SUCH_LYRICS_FILE = "no such file"
LYRICS_FILE_IS_A_FOLDER = "is a folder, not a lyrics file (.lrc or .txt)"


def lyrics_file_unreadable(reason: str) -> str:
    return f"cannot be read ({reason})"


LYRICS_UNTIMED_WITHOUT_ALIGNMENT = (
    "no times ([mm:ss.xx] tags) and lyrics.alignment is off, so the lines cannot be timed: "
    "give an .lrc with times, or turn lyrics.alignment on"
)


def words_from(path: Path, origin: str) -> str:
    """Where the video's words came from (a note on stderr); ``origin`` is one of
    :func:`lyrics_origin`'s."""
    return f"{path}: the video's words are {origin}"


def lyrics_origin(source: str, lyrics_file: Path | None = None) -> str:
    """``separation.lyrics.model.LyricsSource`` values in the operator's words."""
    if lyrics_file is not None:
        return f"from {lyrics_file}"
    return {
        "tags": "from the song's own tags",
        "lrclib": "from LRCLIB (lyrics.lrclib_url)",
    }.get(source, f"from {source}")


def approximate_timing(path: Path) -> str:
    return (
        f"{path}: the words had no times; they were timed on the separated vocals, so the "
        "timing is approximate (an .lrc with times, given with --lyrics, is exact)"
    )


def video_failed(path: Path, reason: str) -> str:
    """The audio files of ``path`` were written; its video was not (exit 1)."""
    return f"{path}: no karaoke video: {reason.rstrip('.')}"


def video_not_rendered(exc: SeparationError | OSError) -> str:
    """The render (or the copy of its file) failed: as an input's failure is said."""
    return _describe(exc)


LYRICS_FOR_ONE_SONG = (
    "argument --lyrics: one lyrics file is the words of one song; give one INPUT with it "
    "(without --lyrics, each song's words come from its tags or LRCLIB)"
)
NO_WORDS_ANYWHERE = "no words found for it"
LYRICS_HINT = "give them with --lyrics FILE (an .lrc with times, or plain text)"


def no_lyrics(tried: list[str]) -> str:
    """Every source was tried (``tried``: what each said) and none had the words."""
    return f"{NO_WORDS_ANYWHERE} ({'; '.join(tried)}): {LYRICS_HINT}"


TAGS_HAVE_NONE = "the song's tags have no lyrics"
TAGS_OFF = "lyrics.from_tags is off"
LRCLIB_OFF = "lyrics.lrclib is off"
LRCLIB_NOT_FOUND = "LRCLIB does not know the song"
LRCLIB_NO_NAMES = "the song has no artist and title tags to look it up on LRCLIB"
LRCLIB_INSTRUMENTAL = "LRCLIB lists it as an instrumental"


def unusable_lyrics(origin: str, reason: str) -> str:
    """Words found but refused (``reason``: a ``LyricsInputError``'s sentence)."""
    return f"the words {origin} cannot be used: {reason.rstrip('.')}"


def lrclib_failed(reason: str) -> str:
    return f"LRCLIB could not be asked ({reason.rstrip('.')})"


# --- issue 25: separate URL, a song from a link -----------------------------------------

_LINK_REFUSALS: dict[str, str] = {
    "unsupported_site": "not a site links may come from (links.allowed_extractors; "
    "any web page: links.generic_extractor)",
    "playlist": "a playlist, not one song: give the link of the song itself",
    "live": "a live stream: only a recorded song can be separated",
    "too_long": "longer than audio.max_duration_seconds by the site's details "
    "(nothing was downloaded)",
    "too_big": "bigger than links.max_bytes",
    "unreachable": "could not be reached (no answer, or an error from its server)",
    "refused_address": "leads to an address that is not public, or a port not allowed "
    "(links.allowed_networks, links.allowed_ports)",
    "not_audio": "no audio or video file there (a web page, or another kind of file)",
    "timeout": "took too long (links.metadata_timeout_seconds, links.download_timeout_seconds)",
    "bad_link": "not a link that can be fetched (http or https only, no user name or "
    "password, at most links.max_redirects redirects)",
}
"""Why a link was refused, one sentence per ``bot.links.errors.LinkErrorKind``."""
LINKS_OFF = "links are turned off (links.enabled = false)"


def link_refused(site: str | None, reason: str) -> str:
    """A link the command did not separate: its site, never its raw text, and why
    (``reason``: a kind of ``LinkError``, or :data:`LINKS_OFF`)."""
    return f"link to {site or 'an unknown site'}: {_LINK_REFUSALS.get(reason, reason)}"
