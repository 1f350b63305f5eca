"""clean_lyrics_text: any bytes or text a stranger sends, as clean bounded text, or one
sentence that refuses it (issue 24's hostile inputs)."""

from __future__ import annotations

import codecs
import unicodedata

import pytest

from separation.errors import LyricsInputError
from separation.lyrics.limits import (
    MAX_INPUT_BYTES,
    MAX_LINES,
    MAX_MARKS_PER_CHARACTER,
    MAX_TEXT_BYTES,
    LyricsBeyondSongError,
    LyricsTooLongError,
    NotTextError,
    NoWordsError,
)
from separation.lyrics.parse import clean_lyrics_text

SONG = "Hello darkness, my old friend\nI've come to talk with you again"


@pytest.mark.parametrize(
    "raw",
    [
        SONG.encode("utf-8"),
        codecs.BOM_UTF8 + SONG.encode("utf-8"),
        codecs.BOM_UTF16_LE + SONG.encode("utf-16-le"),
        codecs.BOM_UTF16_BE + SONG.encode("utf-16-be"),
        codecs.BOM_UTF32_LE + SONG.encode("utf-32-le"),
        SONG.replace("\n", "\r\n").encode("utf-8"),
        SONG.replace("\n", "\r").encode("utf-8"),
        "\ufeff" + SONG,
        SONG.replace("\n", "\u2028"),
        "\n\n  " + SONG.replace("\n", " \t\n") + "  \n\n",
    ],
    ids=["utf8", "utf8-bom", "utf16le-bom", "utf16be-bom", "utf32-bom", "crlf", "cr",
         "str-bom", "line-separator", "blank-edges"],
)  # fmt: skip
def test_every_encoding_and_line_break_gives_the_same_text(raw: bytes | str) -> None:
    assert clean_lyrics_text(raw) == SONG


def test_windows_1252_files_are_read_with_their_curly_quotes() -> None:
    text = "Caf\u00e9 \u201cd\u00e9j\u00e0 vu\u201d \u2013 na\u00efve\nZwei Stra\u00dfen"
    assert clean_lyrics_text(text.encode("cp1252")) == text


@pytest.mark.parametrize(
    "raw",
    [
        "我爱你中国，你好世界，月亮代表我的心".encode("gbk"),
        "君が代は千代に八千代に".encode("shift_jis"),
        SONG.encode("utf-16-le"),  # no BOM: every other byte a NUL
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)) * 4,
        codecs.BOM_UTF8 + b"ok \xff\xfe broken",
    ],
    ids=["gbk", "shift-jis", "utf16-no-bom", "png", "bad-utf8-after-bom"],
)
def test_bytes_that_are_not_text_are_refused_with_one_sentence(raw: bytes) -> None:
    with pytest.raises(NotTextError) as refused:
        clean_lyrics_text(raw)
    assert "UTF-8" in refused.value.user_message
    assert refused.value.user_message.endswith(".")


def test_nuls_and_control_characters_are_removed() -> None:
    raw = f"Hel\x00lo\x07 wor\x1b[31mld\x7f\u0085next\x9b line\tend\n{SONG}"
    assert clean_lyrics_text(raw) == f"Hello wor[31mld\nnext line end\n{SONG}"


def test_a_file_ending_in_nul_padding_is_still_text() -> None:
    assert clean_lyrics_text(SONG.encode() + b"\x00" * 5) == SONG


def test_bidi_overrides_and_invisible_characters_go_but_script_joiners_stay() -> None:
    persian = "می\u200cخواهم"  # ZWNJ inside a Persian word
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # an emoji ZWJ sequence
    hebrew = "\u200fשלום\u200e"  # RLM and LRM: plain direction marks
    raw = f"\u202eevil\u202c \u2066iso\u2069 z\u200bw\u2060j {persian} {family} {hebrew}\ue000"
    assert clean_lyrics_text(raw) == f"evil iso zwj {persian} {family} {hebrew}"


def test_text_is_normalised_to_nfc_even_when_a_dropped_character_split_it() -> None:
    cleaned = clean_lyrics_text("Cafe\u0301 e\u200b\u0301")
    assert cleaned == "Caf\u00e9 \u00e9"
    assert unicodedata.is_normalized("NFC", cleaned)


def test_a_tower_of_combining_marks_is_cut() -> None:
    zalgo = "Z" + "\u0300\u0301\u0302\u0303\u0304" * 100 + "a"
    assert (
        clean_lyrics_text(zalgo)
        == "Z" + ("\u0300\u0301\u0302\u0303\u0304" * 2)[:MAX_MARKS_PER_CHARACTER] + "a"
    )
    vietnamese = "Việt Nam ơi, ngữ"
    assert clean_lyrics_text(vietnamese) == vietnamese


def test_markup_is_kept_as_text() -> None:
    raw = "{\\an8\\c&H0000FF&}Red\\Nline\\h<b>bold</b> **md** [link](http://x) `code`"
    assert clean_lyrics_text(raw) == raw


def test_blank_lines_are_collapsed_to_one() -> None:
    assert clean_lyrics_text("a\n\n\n\n\nb\n \n\t\nc") == "a\n\nb\n\nc"


def test_cleaning_clean_text_changes_nothing() -> None:
    raw = "\ufeff[00:01.00]Cafe\u0301\r\n\r\n\r\n\u202e<00:02.00>x\x00\ty  \r\n\u2028end"
    once = clean_lyrics_text(raw)
    assert clean_lyrics_text(once) == once


@pytest.mark.parametrize(
    "raw",
    [
        "x" * 1_000_000,
        b"la " * 400_000,
        "la\n" * 100_000,
        "\n".join(["la"] * (MAX_LINES + 1)),
        ("词" * 100 + "\n") * 450,  # under the line count, over the bytes once cleaned
    ],
    ids=["1MB-text", "1MB-bytes", "100000-lines", "one-line-too-many", "bytes-once-cleaned"],
)
def test_too_much_text_is_refused_with_one_sentence(raw: bytes | str) -> None:
    with pytest.raises(LyricsTooLongError) as refused:
        clean_lyrics_text(raw)
    assert f"{MAX_LINES} lines" in refused.value.user_message


def test_the_largest_lyrics_taken_are_taken() -> None:
    lines = ["la la la"] * MAX_LINES
    assert clean_lyrics_text("\n\n".join(lines)).count("la la la") == MAX_LINES
    assert len(("x" * 1000 + "\n") * 100) < MAX_INPUT_BYTES
    assert len(clean_lyrics_text("é" * (MAX_TEXT_BYTES // 2)).encode()) == MAX_TEXT_BYTES


@pytest.mark.parametrize("raw", ["", "  \n\t\n", b"\r\n\r\n", "\u200b\u202e\n"])
def test_nothing_to_sing_is_refused(raw: bytes | str) -> None:
    with pytest.raises(NoWordsError):
        clean_lyrics_text(raw)


@pytest.mark.parametrize(
    "error",
    [
        LyricsTooLongError(detail="x"),
        NotTextError(detail="x"),
        NoWordsError(),
        LyricsBeyondSongError(duration_seconds=60.0),
    ],
)
def test_each_refusal_is_one_sentence_for_the_user(error: LyricsInputError) -> None:
    message = error.user_message
    assert isinstance(error, LyricsInputError)
    assert message[0].isupper() and message[-1] in ".?"
    assert "\n" not in message and len(message) < 160
