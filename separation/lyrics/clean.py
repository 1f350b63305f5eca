"""Any lyrics a stranger sends, as clean bounded text: decoded, one kind of line break,
no control characters, NFC, within :mod:`separation.lyrics.limits`.

Decoding, decided: UTF-8 (with or without a BOM), UTF-16 and UTF-32 with their BOM, and
otherwise Windows-1252. Notepad saved "ANSI" (cp1252 in Western locales) by default until
2019 and LRC editors such as MiniLyrics still do, so refusing those files would refuse many
ordinary users; latin-1 would instead turn cp1252's curly quotes into control characters.
Legacy CJK encodings (GBK, Shift-JIS, Big5) also decode as cp1252, into mojibake a video
would show: their text is nearly all bytes above 127, where Western lyrics have a few
accented letters, so a decode that is more than a third non-ASCII letters is refused with
the sentence that asks for UTF-8 rather than shown garbled. A "text" with more than a tenth
control characters (an image, UTF-16 without BOM) is not text.

Characters, decided (``separation.audio.header_reader.clean_text`` drops the same classes
from tags): C0/C1 controls, NUL included, are dropped, tab becomes a space and every line
break (CR LF, CR, VT, FF, NEL, U+2028/9) a newline; surrogates, private-use and unassigned
code points (no font draws them) are dropped; format characters (Unicode ``Cf``) are
dropped, bidi embeddings, overrides and isolates (U+202A-E, U+2066-9) among them, as
they would reorder the rest of a line, except those scripts need: ZWNJ and ZWJ (Persian,
Indic conjuncts, emoji sequences) and the plain direction marks LRM, RLM and ALM, which
only act as a letter of their direction. Runs of combining marks are cut to
:data:`~separation.lyrics.limits.MAX_MARKS_PER_CHARACTER`.

Everything else, braces, backslashes and angle brackets included, is text and stays text:
this layer guarantees no control character and bounded sizes; the ASS writer
(``separation.video``) escapes what libass would read as markup.
"""

from __future__ import annotations

import codecs
import re
import unicodedata

from separation.lyrics.limits import (
    MAX_BINARY_SHARE,
    MAX_INPUT_BYTES,
    MAX_LINES,
    MAX_MARKS_PER_CHARACTER,
    MAX_TEXT_BYTES,
    LyricsTooLongError,
    NotTextError,
    NoWordsError,
)

_BOMS = (
    # UTF-32 first: its little-endian BOM begins with UTF-16's.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_MAX_MOJIBAKE_SHARE = 1 / 3
"""Non-ASCII share of the letters of a cp1252 decode above which it is refused (French or
German lyrics: under 5 %; GBK read as cp1252: over 90 %)."""
_KEPT_FORMAT_CHARACTERS = frozenset("\u200c\u200d\u200e\u200f\u061c")
"""ZWNJ, ZWJ, LRM, RLM, ALM."""
_LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x85\u2028\u2029]")
_DROPPED_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Co", "Cn"))
_BLANK_RUNS = re.compile(r"\n{3,}")


def clean_lyrics_text(raw: bytes | str) -> str:
    """``raw`` lyrics (a file's bytes or a message's text) as clean, bounded text.

    The result has ``\\n`` line breaks only, no control or format characters but those
    scripts need, lines stripped, at most one blank line in a row, no blank line first or
    last. Cleaning clean text changes nothing.

    Raises:
        LyricsTooLongError: past ``MAX_INPUT_BYTES`` raw, or ``MAX_TEXT_BYTES`` or
            ``MAX_LINES`` once cleaned.
        NotTextError: bytes that do not decode as text (or mostly control characters).
        NoWordsError: nothing but blanks.
    """
    if len(raw) > MAX_INPUT_BYTES:
        raise LyricsTooLongError(detail=f"{len(raw)} raw bytes or characters")
    text = _decode(raw) if isinstance(raw, bytes) else raw
    # NFC after dropping, which may bring a letter and its accent together.
    text = _marks_capped(unicodedata.normalize("NFC", _without_controls(text)))
    lines = [line.strip() for line in text.split("\n")]
    cleaned = _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n")
    if not cleaned:
        raise NoWordsError()
    filled = sum(1 for line in lines if line)
    if filled > MAX_LINES:
        raise LyricsTooLongError(detail=f"{filled} lines")
    size = len(cleaned.encode("utf-8"))
    if size > MAX_TEXT_BYTES:
        raise LyricsTooLongError(detail=f"{size} bytes once cleaned")
    return cleaned


def _decode(raw: bytes) -> str:
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return raw[len(bom) :].decode(encoding)
            except UnicodeDecodeError as exc:
                raise NotTextError(detail=f"invalid {encoding} after its BOM: {exc}") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise NotTextError(detail=f"neither UTF-8 nor cp1252: {exc}") from exc
    letters = [c for c in text if c.isalpha()]
    foreign = sum(1 for c in letters if not c.isascii())
    if letters and foreign > _MAX_MOJIBAKE_SHARE * len(letters):
        raise NotTextError(detail=f"cp1252 decode is {foreign}/{len(letters)} non-ASCII letters")
    return text


def _without_controls(text: str) -> str:
    """``text`` with ``\\n`` line breaks, tabs as spaces, and the dropped classes dropped.

    Raises:
        NotTextError: more than ``MAX_BINARY_SHARE`` of it is control characters.
    """
    text = _LINE_BREAKS.sub("\n", text).replace("\t", " ")
    # Each distinct character is looked up once: a song uses a few hundred of them.
    categories = {c: unicodedata.category(c) for c in set(text) if c != "\n"}
    controls = sum(text.count(c) for c, category in categories.items() if category == "Cc")
    if controls > MAX_BINARY_SHARE * len(text):
        raise NotTextError(detail=f"{controls} control characters in {len(text)}")
    dropped = {
        ord(c): None
        for c, category in categories.items()
        if category in _DROPPED_CATEGORIES and c not in _KEPT_FORMAT_CHARACTERS
    }
    return text.translate(dropped)


def _marks_capped(text: str) -> str:
    """``text`` with at most ``MAX_MARKS_PER_CHARACTER`` combining marks in a row."""
    marks = "".join(c for c in set(text) if unicodedata.category(c).startswith("M"))
    if not marks:
        return text
    mark = f"[{re.escape(marks)}]"
    return re.sub(f"({mark}{{{MAX_MARKS_PER_CHARACTER}}}){mark}+", r"\1", text)
