"""What users wrote, made safe to send back: names, quotes and operators' listings.

Anything a user controls (a file name, tags, a Telegram performer, a display name, a
command's argument) can carry characters that do not print but act: right-to-left
overrides that turn ``\u202e3pm.exe`` into ``exe.mp3``, zero-width characters that make
two names look alike, newlines and terminal escapes that forge lines, and thousands of
characters that make a platform refuse the whole message (issue 20). Three uses, one
place:

* :func:`clean_name`: a file name, title or performer we send (invisible and control
  characters dropped, whitespace collapsed, length capped; letters of every script,
  CJK and emoji kept);
* :func:`excerpt`: a short, cleaned quote of user input inside a sentence;
* :func:`escaped`: a name printed for an operator, every such character shown escaped
  (``\\u202e``, ``\\n``, ``\\x1b``) rather than dropped, so nothing is hidden either.
"""

from __future__ import annotations

import unicodedata

MAX_NAME_CHARS = 80
"""Titles and performers: Telegram shows about this much, well under its limits."""
MAX_EXCERPT_CHARS = 24
"""A quote of user input in a sentence: enough to recognise, never a wall of text."""

_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cs", "Co"})
"""Format characters (bidi controls U+202A-202E and U+2066-2069, marks U+200E/U+200F,
zero-width U+200B-U+200D, U+2060, U+FEFF...), surrogates, private use: dropped."""
_SEPARATOR_CATEGORIES = frozenset({"Cc", "Zs", "Zl", "Zp"})
"""Control characters (newlines, tabs, NUL, ESC...) and every kind of space: they
separate words, so each becomes a plain space."""
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
"""What :func:`escaped` shows as an escape: all but spaces, which forge nothing."""


def _visible(text: str) -> str:
    """``text`` with invisible characters dropped and separators as single spaces."""
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if category in _SEPARATOR_CATEGORIES:
            kept.append(" ")
        elif category not in _INVISIBLE_CATEGORIES:
            kept.append(char)
    return " ".join("".join(kept).split())


def clean_name(text: str | None, *, max_chars: int = MAX_NAME_CHARS) -> str:
    """A name safe to send as a file name, title or performer: one line, only visible
    characters, at most ``max_chars`` (cut at a character, trailing space dropped)."""
    if not text:
        return ""
    return _visible(text)[:max_chars].rstrip()


def excerpt(text: object, *, max_chars: int = MAX_EXCERPT_CHARS) -> str:
    """A short, cleaned quote of user input, with "…" where it was cut."""
    cleaned = _visible(str(text))
    if len(cleaned) <= max_chars:
        return cleaned
    return cleaned[: max_chars - 1].rstrip() + "\N{HORIZONTAL ELLIPSIS}"


def escaped(text: str) -> str:
    """``text`` for an operator's terminal or an admin's chat: printable characters as
    they are, everything else (and the backslash) escaped as Python writes it."""
    shown = []
    for char in text:
        if char == "\\":
            shown.append("\\\\")
        elif unicodedata.category(char) in _ESCAPED_CATEGORIES:
            shown.append(char.encode("unicode_escape").decode("ascii"))
        else:
            shown.append(char)
    return "".join(shown)
