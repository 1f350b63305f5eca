"""read_lyrics_tags: the words a song file's tags carry, read by mutagen in a sandboxed
child from files tagged the way taggers tag them; hostile files give None, never an error."""

from __future__ import annotations

import logging
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from separation.audio.sandbox import ChildLimits
from separation.lyrics.limits import MAX_INPUT_BYTES
from separation.lyrics.model import LyricsSource, Timing
from separation.lyrics.parse import parse_lyrics
from separation.lyrics.tags import TAG_READER_LIMITS, read_lyrics_tags
from tests.support.lyrics_tags import (
    SYLT_MPEG_FRAMES,
    flac_with_comments,
    m4a_with_lyrics,
    mp3_with_lyrics,
    ogg_with_comments,
)

LRC = "[00:00.50]First line\n[00:01.20]Second line"
ENHANCED = "[00:00.50]<00:00.50>First <00:00.90>line<00:01.10>"
PLAIN = "First line\nSecond line"
WORDS = [("\nHel", 500), ("lo ", 800), ("there", 1000), ("\nBye ", 1500), ("now", 1700)]


def as_upload(path: Path) -> Path:
    """The file as the bot stores an upload: no extension, so only its content counts."""
    upload = path.with_name("upload")
    shutil.copyfile(path, upload)
    return upload


def timing_of(text: str | None) -> Timing:
    assert text is not None
    return parse_lyrics(text, source=LyricsSource.TAGS).timing


def test_an_mp3_with_lrc_in_its_uslt_frame(tmp_path: Path, ffmpeg: str) -> None:
    song = as_upload(mp3_with_lyrics(tmp_path / "s.mp3", ffmpeg, uslt=LRC))
    assert read_lyrics_tags(song) == LRC


def test_an_mp3_with_a_sylt_frame_gives_enhanced_lrc(tmp_path: Path, ffmpeg: str) -> None:
    song = mp3_with_lyrics(tmp_path / "s.mp3", ffmpeg, sylt=WORDS, uslt=PLAIN)
    text = read_lyrics_tags(song)
    assert text == (
        "[00:00.50]<00:00.50>Hel<00:00.80>lo <00:01.00>there<00:01.50>\n"
        "[00:01.50]<00:01.50>Bye <00:01.70>now<00:04.70>\n[00:04.70]"
    )
    lyrics = parse_lyrics(text, source=LyricsSource.TAGS)
    assert lyrics.timing is Timing.WORD
    assert [(w.text, w.start) for w in lyrics.lines[0].words] == [
        ("Hel", 0.5), ("lo ", 0.8), ("there", 1.0)
    ]  # fmt: skip


def test_a_sylt_frame_of_whole_lines_is_timed_by_line(tmp_path: Path, ffmpeg: str) -> None:
    lines = [("First line here", 500), ("月亮代表我的心", 1500)]
    song = mp3_with_lyrics(tmp_path / "s.mp3", ffmpeg, sylt=lines)
    text = read_lyrics_tags(song)
    assert text == "[00:00.50]First line here\n[00:01.50]月亮代表我的心\n[00:11.50]"
    assert timing_of(text) is Timing.LINE


def test_a_sylt_frame_of_syllables_without_line_breaks_is_wrapped(
    tmp_path: Path, ffmpeg: str
) -> None:
    syllables = [(character, 500 + 250 * i) for i, character in enumerate("月亮代表我的心" * 6)]
    song = mp3_with_lyrics(tmp_path / "s.mp3", ffmpeg, sylt=syllables)
    lyrics = parse_lyrics(read_lyrics_tags(song) or "", source=LyricsSource.TAGS)
    assert lyrics.timing is Timing.WORD
    assert [len(line.words) for line in lyrics.lines] == [21, 21]
    assert lyrics.lines[1].words[0].start == (500 + 250 * 21) / 1000


def test_a_sylt_frame_timed_in_mpeg_frames_is_left_for_the_uslt(
    tmp_path: Path, ffmpeg: str, caplog: pytest.LogCaptureFixture
) -> None:
    song = mp3_with_lyrics(
        tmp_path / "s.mp3", ffmpeg, sylt=WORDS, sylt_format=SYLT_MPEG_FRAMES, uslt=PLAIN
    )
    with caplog.at_level(logging.INFO, logger="separation.lyrics.tags"):
        assert read_lyrics_tags(song) == PLAIN
    assert "SYLT timed in MPEG frames left out" in caplog.text


def test_a_flac_with_lyrics(tmp_path: Path, ffmpeg: str) -> None:
    song = as_upload(flac_with_comments(tmp_path / "s.flac", ffmpeg, LYRICS=PLAIN))
    assert read_lyrics_tags(song) == PLAIN


def test_synced_lyrics_win_over_unsynced_and_word_times_over_line_times(
    tmp_path: Path, ffmpeg: str
) -> None:
    synced = flac_with_comments(tmp_path / "a.flac", ffmpeg, LYRICS=PLAIN, SYNCEDLYRICS=LRC)
    assert read_lyrics_tags(synced) == LRC
    # Whatever the tag's name, the best timed text wins.
    by_word = flac_with_comments(
        tmp_path / "b.flac", ffmpeg, UNSYNCEDLYRICS=PLAIN, SYNCEDLYRICS=LRC, LYRICS=ENHANCED
    )
    assert read_lyrics_tags(by_word) == ENHANCED


def test_an_ogg_vorbis_with_lrc_lyrics(tmp_path: Path, ffmpeg: str) -> None:
    song = as_upload(ogg_with_comments(tmp_path / "s.ogg", ffmpeg, lyrics=LRC))
    assert read_lyrics_tags(song) == LRC


def test_an_m4a_with_lyrics(tmp_path: Path, ffmpeg: str) -> None:
    song = as_upload(m4a_with_lyrics(tmp_path / "s.m4a", ffmpeg, LRC))
    assert read_lyrics_tags(song) == LRC


def test_tags_are_cleaned_like_any_lyrics(tmp_path: Path, ffmpeg: str) -> None:
    hostile = "\ufeff[00:00.50]{\\an8}Hi\x00 \u202ethere\r\n\r\n\r\n[00:01.00]<b>x</b>\x1b[2J"
    song = flac_with_comments(tmp_path / "s.flac", ffmpeg, LYRICS=hostile)
    assert read_lyrics_tags(song) == "[00:00.50]{\\an8}Hi there\n\n[00:01.00]<b>x</b>[2J"


def test_a_huge_tag_is_cut_in_the_child_and_refused(
    tmp_path: Path, ffmpeg: str, caplog: pytest.LogCaptureFixture
) -> None:
    huge = "la la la\n" * (MAX_INPUT_BYTES // 2)
    alone = flac_with_comments(tmp_path / "a.flac", ffmpeg, LYRICS=huge)
    with caplog.at_level(logging.INFO, logger="separation.lyrics.tags"):
        assert read_lyrics_tags(alone) is None
    assert "too long" in caplog.text
    beside = flac_with_comments(tmp_path / "b.flac", ffmpeg, LYRICS=huge, SYNCEDLYRICS=LRC)
    assert read_lyrics_tags(beside) == LRC


def test_a_song_without_lyrics_tags(tmp_path: Path, ffmpeg: str) -> None:
    assert read_lyrics_tags(flac_with_comments(tmp_path / "s.flac", ffmpeg, TITLE="x")) is None


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"just some text\n",
        random.Random(0).randbytes(4096),
        b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + b"\xff" * 64,
    ],
    ids=["empty", "text", "random", "broken-id3"],
)
def test_a_file_that_is_not_a_tagged_song_gives_none(tmp_path: Path, content: bytes) -> None:
    upload = tmp_path / "upload"
    upload.write_bytes(content)
    assert read_lyrics_tags(upload) is None


def _fake_python(folder: Path, script: str) -> str:
    path = folder / "python"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return str(path)


def test_a_reader_that_hangs_is_stopped_and_gives_none(
    tmp_path: Path, ffmpeg: str, caplog: pytest.LogCaptureFixture
) -> None:
    song = flac_with_comments(tmp_path / "s.flac", ffmpeg, LYRICS=PLAIN)
    hanging = _fake_python(tmp_path, "exec sleep 60")
    limits = ChildLimits(wall_seconds=0.5, memory_bytes=TAG_READER_LIMITS.memory_bytes)
    with caplog.at_level(logging.INFO, logger="separation.lyrics.tags"):
        assert read_lyrics_tags(song, limits=limits, python=hanging) is None
    assert "no result within" in caplog.text


def test_a_reader_that_crashes_or_cannot_start_gives_none(tmp_path: Path, ffmpeg: str) -> None:
    song = flac_with_comments(tmp_path / "s.flac", ffmpeg, LYRICS=PLAIN)
    assert read_lyrics_tags(song, python=_fake_python(tmp_path, "kill -SEGV $$")) is None
    assert read_lyrics_tags(song, python=str(tmp_path / "no-such-python")) is None


def test_a_reader_out_of_memory_gives_none(tmp_path: Path, ffmpeg: str) -> None:
    song = flac_with_comments(tmp_path / "s.flac", ffmpeg, LYRICS=PLAIN)
    starved = ChildLimits(wall_seconds=15.0, memory_bytes=8 * 2**20)
    assert read_lyrics_tags(song, limits=starved) is None


def test_without_mutagen_the_reader_says_so_and_gives_none(
    tmp_path: Path, ffmpeg: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    song = flac_with_comments(tmp_path / "s.flac", ffmpeg, LYRICS=PLAIN)
    shadow = tmp_path / "shadow" / "mutagen"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'mutagen'\")\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(shadow.parent))
    with caplog.at_level(logging.WARNING, logger="separation.lyrics.tags"):
        assert read_lyrics_tags(song) is None
    assert "mutagen is not installed" in caplog.text


def test_lyrics_parsing_and_tags_never_import_torch() -> None:
    code = (
        "import sys, separation.lyrics.parse, separation.lyrics.tags;"
        "print(sorted({'torch', 'numpy'} & set(sys.modules)))"
    )
    root = Path(__file__).resolve().parents[3]
    child = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True, timeout=60,
        check=True,
    )  # fmt: skip
    assert child.stdout.strip() == "[]"
