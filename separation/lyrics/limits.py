"""How much lyrics text the bot takes, and the one sentence that refuses more.

Lyrics are a stranger's text (a pasted message, an ``.lrc`` file, a song's tags, an
LRCLIB answer), and every line of them becomes an event the video renderer draws. These
bounds make the cost of any lyrics bounded before anything is parsed or rendered; a real
song is far inside every one of them (about 60 lines, 2 to 4 KB; a long rap song 150 lines,
10 KB). What goes past a bound is refused with one of the errors below, whose message is
the sentence the chat shows (``exc.user_message``) and the command line prints: they are
all here, so they read alike.
"""

from __future__ import annotations

from separation.errors import LyricsInputError

MAX_INPUT_BYTES = 256_000
"""What is even looked at: bytes of a file, or characters of a message. The chat adapters
download at most as much (``MAX_LYRICS_DOWNLOAD_BYTES``); a 1 MB text stops here, before
it is decoded."""
MAX_TEXT_BYTES = 128 * 1024
"""The cleaned text, as UTF-8. Room for the enhanced LRC form (a time tag on every word)
of a long song in a script of three bytes a character; the plain words of any song are a
tenth of it."""
MAX_LINES = 500
"""Lines with words, in the text and on screen (a chorus repeated by several time tags
counts once for each time). Five times the longest song's lines."""
MAX_LINE_COLUMNS = 48
"""A line on screen, in columns (a CJK character is two): what a 480p frame shows in a
font a phone can read. A longer line is wrapped at a space (or, with none, between
characters) into several lines, so no line has more than this many words either."""
MAX_MARKS_PER_CHARACTER = 8
"""Combining marks kept after one base character: Vietnamese needs two, Indic and Hebrew
pointing four or five; 500 of them (\"Zalgo\" text) only make libass draw a tower."""
MAX_BINARY_SHARE = 0.1
"""Above this share of control characters (NULs...) a "text" is a binary file."""
MAX_LINE_SECONDS = 10.0
"""Longest time one LRC line without word times is filled over: when the next line comes
later (an instrumental break the LRC did not mark), the fill would crawl through it."""
MAX_WORD_SECONDS = 3.0
"""Longest a line's last word is held when nothing says when it ends (a held note)."""
MAX_TIME_SECONDS = 24 * 3600.0
"""Lines timed later than this are dropped even when the song's length is not given (no
song is a day long; times stay within LRC's four digits of minutes)."""
MAX_TIME_TAGS_PER_LINE = 32
"""Time tags in front of one LRC line (a chorus sung at each of them)."""


class LyricsTooLongError(LyricsInputError):
    """Past :data:`MAX_INPUT_BYTES`, :data:`MAX_TEXT_BYTES` or :data:`MAX_LINES`."""

    kind = "lyrics_too_long"

    def __init__(self, *, detail: str) -> None:
        self.detail = detail
        super().__init__(
            f"Those lyrics are too long for one song: I take at most {MAX_LINES} lines "
            f"({MAX_TEXT_BYTES // 1024} KB)."
        )


class NotTextError(LyricsInputError):
    """Bytes that are neither UTF-8/UTF-16/UTF-32 nor Western (cp1252) text."""

    kind = "lyrics_not_text"

    def __init__(self, *, detail: str) -> None:
        self.detail = detail
        super().__init__(
            "That doesn't look like text I can read: send the lyrics as a message, "
            "or as an .lrc or .txt file saved as UTF-8."
        )


class NoWordsError(LyricsInputError):
    """Nothing to sing: empty, only time tags, only section headers or metadata."""

    kind = "lyrics_no_words"

    def __init__(self) -> None:
        super().__init__("I found no words to sing in those lyrics.")


class LyricsBeyondSongError(LyricsInputError):
    """Every timed line starts after the song has ended: lyrics of another song."""

    kind = "lyrics_beyond_song"

    def __init__(self, *, duration_seconds: float) -> None:
        self.duration_seconds = duration_seconds
        super().__init__(
            "The times in those lyrics all fall after the end of the song; "
            "are they for another song?"
        )
