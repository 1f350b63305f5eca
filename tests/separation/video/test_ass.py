"""The karaoke subtitles as written: escaping, colours, and the designer's layout rules
(two slots, lead-in, countdowns, title card, fills spread by characters)."""

from __future__ import annotations

import re
from pathlib import Path

import pysubs2
import pytest

from separation.lyrics.model import LyricLine, Lyrics, LyricsSource, Timing
from separation.video.ass import escape_ass_text, write_karaoke_ass
from separation.video.layout import (
    BREAK_LEAD,
    LEAD_IN,
    LONG_GAP,
    MIN_FILL_CAP,
    MIN_LEAD,
    plan_screen,
)
from separation.video.request import VideoLook
from tests.support.video import line_lyrics, timed_line, word_lyrics

HOSTILE = [
    r"{\c&H0000FF&}red",
    r"{\fs300}huge",
    r"line\Nbreak and a \h hard space",
    r"{\p1}m 0 0 l 100 0 100 100 0 100{\p0}",
    "unclosed { brace } and \\{ libass escape \\}",
    "new\nline\r\nDialogue: 0,0:00:00.00,0:00:09.00,Lyrics,,0,0,0,,{\\fs500}injected",
    "nul\x00 and bell\x07 and line separator\u2028",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_escaped_text_holds_no_markup_and_no_line_break(text: str) -> None:
    escaped = escape_ass_text(text)
    assert not set(escaped) & {"{", "}", "\\", "\n", "\r", "\x00", "\u2028"}
    # What the user wrote is still all there to read (as lookalikes).
    assert escaped.replace("\uff5b", "{").replace("\uff5d", "}").replace("\uff3c", "\\") == (
        re.sub(r"[\x00-\x1f\u2028]", " ", text)
    )


def test_hostile_lyrics_title_and_artist_reach_the_file_only_as_text(tmp_path: Path) -> None:
    lyrics = line_lyrics(*((text, 5.0 + 3 * index, None) for index, text in enumerate(HOSTILE)))
    path = tmp_path / "k.ass"
    write_karaoke_ass(
        lyrics, path, look=VideoLook(), title=HOSTILE[0], artist=HOSTILE[5], duration_seconds=60
    )
    dialogues = [line for line in path.read_text().splitlines() if line.startswith("Dialogue:")]
    assert len(dialogues) == len(HOSTILE) + 2  # the lines, the title and the artist
    for dialogue in dialogues:
        text = dialogue.split(",", 9)[9]
        # Only our own override blocks (positions, fades, karaoke times) and row breaks.
        ours = re.sub(r"\{(\\(an\d|pos\(\d+,\d+\)|fad\(\d+,\d+\)|kf?\d+))+\}", "", text)
        ours = ours.replace("\\N", "")
        assert not set(ours) & {"{", "}", "\\"}, dialogue


def test_colours_fill_from_secondary_to_primary(tmp_path: Path) -> None:
    look = VideoLook(text_colour="#102030", fill_colour="#ffcc00")
    path = tmp_path / "k.ass"
    write_karaoke_ass(
        word_lyrics(timed_line(("la ", 1.0, 2.0))), path, look=look, title="t", artist=None,
        duration_seconds=10,
    )  # fmt: skip
    style = pysubs2.load(str(path)).styles["Lyrics"]
    # \kf goes from SecondaryColour (not sung yet) to PrimaryColour (sung).
    assert (style.primarycolor.r, style.primarycolor.g, style.primarycolor.b) == (255, 204, 0)
    assert (style.secondarycolor.r, style.secondarycolor.g, style.secondarycolor.b) == (16, 32, 48)
    assert "&H0000CCFF,&H00302010" in path.read_text()  # &HAABBGGRR
    assert style.encoding == -1  # libass finds each line's direction (RTL)


def test_lines_alternate_slots_and_show_before_they_are_sung() -> None:
    lyrics = line_lyrics(*((f"line {n}", 2.0 + 2.0 * n, 3.8 + 2.0 * n) for n in range(6)))
    screen = plan_screen(lyrics, duration_seconds=30)
    assert [line.slot for line in screen.lines] == [0, 1, 0, 1, 0, 1]
    for index, line in enumerate(screen.lines):
        start = line.words[0].start
        assert line.show <= start - MIN_LEAD
        assert line.hide >= line.words[-1].end
        if index >= 2:  # never two lines in one slot
            assert line.show >= screen.lines[index - 2].hide
    # The first two lines appear together; each later one when its slot frees.
    assert screen.lines[1].show == screen.lines[0].show == pytest.approx(2.0 - LEAD_IN)


def test_a_long_intro_and_a_long_break_get_a_countdown_and_a_clear_screen() -> None:
    lyrics = line_lyrics(
        ("first", 12.0, 14.0), ("second", 14.0, 16.0), ("after the solo", 40.0, 42.0)
    )
    screen = plan_screen(lyrics, duration_seconds=60)
    assert screen.countdowns == (12.0, 40.0)
    third = screen.lines[2]
    assert third.slot == 0  # starts again at the top
    assert third.show == pytest.approx(40.0 - BREAK_LEAD)
    assert screen.lines[1].hide < third.show  # the screen was cleared during the solo
    assert screen.title is not None
    assert screen.title[0] == 0 and screen.title[1] < screen.lines[0].show


def test_no_countdown_or_title_when_singing_starts_at_once() -> None:
    screen = plan_screen(line_lyrics(("now", 0.5, 2.0)), duration_seconds=10)
    assert screen.countdowns == ()
    assert screen.title is None
    assert screen.lines[0].show == 0.0
    assert LONG_GAP > 0.5


def test_line_timing_fills_by_characters_and_stops_at_the_song_end() -> None:
    lyrics = line_lyrics(("a bbbb", 1.0, 4.5), ("beyond", 20.0, None))
    screen = plan_screen(lyrics, duration_seconds=10)
    assert len(screen.lines) == 1  # the second line starts after the song
    short, long = screen.lines[0].words
    assert (short.text, long.text) == ("a ", "bbbb")
    assert short.end - short.start == pytest.approx((long.end - long.start) / 4)
    assert long.end == pytest.approx(4.5)


def test_a_line_timed_fill_does_not_creep_over_an_instrumental_part() -> None:
    # LRC gives a line's end as the next line's start, here after a 30 s solo.
    screen = plan_screen(
        line_lyrics(("short", 1.0, 31.0), ("next", 31.0, 33.0)), duration_seconds=40
    )
    first = screen.lines[0].words
    assert first[-1].end - first[0].start == pytest.approx(MIN_FILL_CAP)


def test_karaoke_times_follow_the_words(tmp_path: Path) -> None:
    lyrics = word_lyrics(timed_line(("one ", 2.0, 2.5), ("two", 3.0, 3.25)))
    path = tmp_path / "k.ass"
    write_karaoke_ass(lyrics, path, look=VideoLook(), title="t", artist=None, duration_seconds=9)
    dialogue = next(line for line in path.read_text().splitlines() if "one" in line)
    # Shown at 1.0: a 1 s pause, 0.5 s of fill, a 0.5 s pause, 0.25 s of fill.
    assert dialogue.startswith("Dialogue: 0,0:00:01.00,")
    assert dialogue.endswith(r"{\k100}{\kf50}one {\k50}{\kf25}two")


def test_untimed_lyrics_are_refused() -> None:
    untimed = Lyrics((LyricLine("words"),), Timing.NONE, LyricsSource.USER)
    with pytest.raises(ValueError, match="untimed"):
        plan_screen(untimed, duration_seconds=5)


def test_a_line_timed_only_by_its_words_is_shown() -> None:
    line = timed_line(("only ", 2.0, 2.4), ("words", 2.5, 3.0))
    untimed_line = LyricLine(line.text, None, None, line.words)
    screen = plan_screen(
        Lyrics((untimed_line,), Timing.ALIGNED, LyricsSource.USER), duration_seconds=5
    )
    assert [word.text for word in screen.lines[0].words] == ["only ", "words"]
    assert screen.lines[0].show == pytest.approx(2.0 - LEAD_IN)
