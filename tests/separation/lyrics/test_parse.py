"""parse_lyrics and to_lrc: LRC's variants, enhanced LRC's word times, plain text, and
the hostile cases issue 24 lists (out of order, negative, past the end, markup...)."""

from __future__ import annotations

import random
import unicodedata

import pytest

from separation.errors import LyricsInputError
from separation.lyrics.limits import (
    MAX_LINE_COLUMNS,
    MAX_LINE_SECONDS,
    MAX_LINES,
    MAX_WORD_SECONDS,
    LyricsBeyondSongError,
    LyricsTooLongError,
    NoWordsError,
)
from separation.lyrics.lrc_tags import stamp
from separation.lyrics.model import LyricLine, Lyrics, LyricsSource, LyricWord, Timing
from separation.lyrics.parse import parse_lyrics, to_lrc
from separation.lyrics.wrap import columns

USER = LyricsSource.USER


def parse(text: str, duration_seconds: float | None = None) -> Lyrics:
    lyrics = parse_lyrics(text, source=USER, duration_seconds=duration_seconds)
    assert_well_formed(lyrics, duration_seconds)
    return lyrics


def assert_well_formed(lyrics: Lyrics, duration_seconds: float | None = None) -> None:
    """What every caller may rely on (``separation.lyrics.timeline``'s promise)."""
    assert 0 < len(lyrics.lines) <= MAX_LINES
    previous = 0.0
    for line in lyrics.lines:
        assert line.text and line.text == line.text.strip()
        assert columns(line.text) <= MAX_LINE_COLUMNS
        assert not any(unicodedata.category(c) == "Cc" for c in line.text)
        if not lyrics.is_timed:
            assert line.start is None and line.end is None and line.words == ()
            continue
        assert line.start is not None and line.end is not None
        assert previous <= line.start <= line.end
        if duration_seconds is not None:
            assert line.end <= duration_seconds
        assert "".join(word.text for word in line.words) == line.text
        time = line.start
        for word in line.words:
            assert time <= word.start <= word.end <= line.end
            time = word.start
        previous = line.start


def starts(lyrics: Lyrics) -> list[tuple[float | None, str]]:
    return [(line.start, line.text) for line in lyrics.lines]


@pytest.mark.parametrize(
    ("tag", "seconds"),
    [("[01:02.50]", 62.5), ("[01:02]", 62.0), ("[01:02:50]", 62.5), ("[01:02.5]", 62.5),
     ("[01:02.500]", 62.5), ("[1:02.50]", 62.5), ("[ 01:02.50 ]", 62.5), ("[120:00.00]", 7200.0)],
)  # fmt: skip
def test_every_way_of_writing_a_line_time(tag: str, seconds: float) -> None:
    lyrics = parse(f"{tag}Sing")
    assert lyrics.timing is Timing.LINE
    assert starts(lyrics) == [(pytest.approx(seconds), "Sing")]


def test_a_chorus_with_several_times_is_sung_at_each_of_them() -> None:
    lyrics = parse("[00:10.00][00:40.00] [01:10.00]Chorus\n[00:20.00]Verse")
    assert starts(lyrics) == [(10.0, "Chorus"), (20.0, "Verse"), (40.0, "Chorus"), (70.0, "Chorus")]


def test_metadata_is_not_sung_and_the_offset_moves_every_time() -> None:
    header = "[ar:Artist]\n[ti:Title]\n[al:Album]\n[length: 03:25]\n[by:me]\n"
    sooner = parse(header + "[offset:+500]\n[00:10.00]a\n[00:12.00]<00:12.20>b")
    assert starts(sooner) == [(9.5, "a"), (11.5, "b")]
    assert sooner.lines[1].words[0].start == pytest.approx(11.7)
    later = parse("[offset:-250]\n[00:10.00]a")
    assert starts(later) == [(10.25, "a")]


def test_times_out_of_order_are_sorted() -> None:
    lyrics = parse("[00:30.00]third\n[00:10.00]first\n[00:20.00]second")
    assert starts(lyrics) == [(10.0, "first"), (20.0, "second"), (30.0, "third")]
    assert [line.end for line in lyrics.lines] == [20.0, 30.0, 30.0 + MAX_LINE_SECONDS]


def test_negative_times_are_clamped_and_only_the_line_sung_at_zero_is_kept() -> None:
    lyrics = parse("[-00:02.00]gone\n[-00:01.00]at zero\n[00:03.00]main")
    assert starts(lyrics) == [(0.0, "at zero"), (3.0, "main")]
    moved = parse("[offset:+2000]\n[00:01.00]a\n[00:05.00]b")
    assert starts(moved) == [(0.0, "a"), (3.0, "b")]
    at_zero = parse("[-00:01.00]before\n[00:00.00]zero")
    assert starts(at_zero) == [(0.0, "zero")]


def test_lines_after_the_end_of_the_song_are_dropped_and_the_last_ends_with_it() -> None:
    lyrics = parse("[00:10.00]a\n[00:58.00]b\n[01:30.00]c\n[00:59.00]", duration_seconds=60.0)
    assert starts(lyrics) == [(10.0, "a"), (58.0, "b")]
    assert lyrics.lines[-1].end == 59.0
    assert parse("[00:58.00]b", duration_seconds=60.0).lines[0].end == 60.0


def test_lyrics_that_all_start_after_the_song_are_refused() -> None:
    with pytest.raises(LyricsBeyondSongError):
        parse_lyrics("[05:00.00]a\n[06:00.00]b", source=USER, duration_seconds=60.0)


def test_empty_lines_are_gaps_that_end_the_line_before() -> None:
    lyrics = parse("[00:05.00]\n[00:10.00]a\n[00:12.00]\n[00:13.00]\n[00:20.00]b")
    assert starts(lyrics) == [(10.0, "a"), (20.0, "b")]
    assert lyrics.lines[0].end == 12.0


def test_of_two_lines_at_one_time_the_first_with_words_is_sung() -> None:
    lyrics = parse("[00:10.00]Original\n[00:10.00]Translation\n[00:15.00]\n[00:15.00]Next")
    assert starts(lyrics) == [(10.0, "Original"), (15.0, "Next")]


def test_a_line_fills_evenly_by_width_and_never_crawls_through_a_break() -> None:
    lyrics = parse("[00:10.00]aa bbbb\n[00:16.00]x\n[01:00.00]y")
    first, second, _ = lyrics.lines
    assert [(w.text, w.start, w.end) for w in first.words] == [
        ("aa ", 10.0, 12.0), ("bbbb", 12.0, 16.0)
    ]  # fmt: skip
    assert second.end == 16.0 + MAX_LINE_SECONDS


def test_lines_without_a_time_in_an_lrc_are_not_sung() -> None:
    lyrics = parse("Lyrics by someone\n[00:10.00]a\n(untimed)\n[00:12.00]b")
    assert starts(lyrics) == [(10.0, "a"), (12.0, "b")]


def test_enhanced_lrc_gives_every_word_its_time() -> None:
    lyrics = parse(
        "[00:12.00]<00:12.00>Hel<00:12.30>lo <00:12.50>world<00:13.10>\n"
        "[00:14.00]<00:14.00>once <00:15.00>more\n"
        "[00:30.00]<00:30.00>last"
    )
    assert lyrics.timing is Timing.WORD
    first, second, last = lyrics.lines
    assert first.text == "Hello world"
    assert [(w.text, w.start, w.end) for w in first.words] == [
        ("Hel", 12.0, 12.3), ("lo ", 12.3, 12.5), ("world", 12.5, pytest.approx(13.1))
    ]  # fmt: skip
    assert first.end == pytest.approx(13.1)
    assert second.words[-1].end == second.end == 15.0 + MAX_WORD_SECONDS
    assert last.end == 30.0 + MAX_WORD_SECONDS


def test_enhanced_words_are_clamped_to_their_line_and_kept_in_order() -> None:
    lyrics = parse("[00:10.00]<00:11.00>b <00:10.50>a <00:25.00>far\n[00:12.00]next")
    words = lyrics.lines[0].words
    assert [(w.start, w.end) for w in words] == [(11.0, 11.0), (11.0, 12.0), (12.0, 12.0)]


def test_word_times_before_their_line_or_an_end_before_the_words_are_clamped() -> None:
    lyrics = parse("[00:10.00]a\n[00:12.00]<00:05.00>b <00:13.00>c<00:04.00>\n[00:20.00]d")
    second = lyrics.lines[1]
    assert (second.start, second.end) == (12.0, 13.0)
    assert [(w.start, w.end) for w in second.words] == [(12.0, 13.0), (13.0, 13.0)]


def test_a_repeated_enhanced_chorus_moves_its_word_times_with_it() -> None:
    lyrics = parse("[00:10.00][00:30.00]<00:10.00>la <00:11.00>la<00:12.00>")
    assert [[w.start for w in line.words] for line in lyrics.lines] == [[10.0, 11.0], [30.0, 31.0]]


def test_lines_with_and_without_word_times_are_timed_by_line() -> None:
    lyrics = parse("[00:10.00]<00:10.00>a <00:11.00>b\n[00:12.00]c d")
    assert lyrics.timing is Timing.LINE
    assert [w.start for w in lyrics.lines[0].words] == [10.0, 11.0]


def test_plain_text_is_lines_without_times() -> None:
    text = "[ar:Someone]\n[Verse 1]\nFirst  line\n\n[Chorus]\nSecond <00:01.00>line\n"
    lyrics = parse(text)
    assert lyrics.timing is Timing.NONE and not lyrics.is_timed
    assert [line.text for line in lyrics.lines] == ["First line", "Second line"]


@pytest.mark.parametrize(
    "hostile",
    [
        "{\\an8\\pos(0,0)\\c&H0000FF&}Take over",
        "Line\\Nbreak and\\nanother\\hhard space",
        "<b>bold</b> <i>it</i> <font color=red>red</font>",
        "**bold** _it_ [link](http://x) `code` # heading",
        "{\\p1}m 0 0 l 100 0 100 100{\\p0}",
        "C:\\path\\{braces}",
    ],
)
def test_markup_stays_text_in_lrc_and_plain_text(hostile: str) -> None:
    assert parse(f"[00:01.00]{hostile}").lines[0].text == hostile
    assert parse(hostile).lines[0].text == hostile
    enhanced = parse(f"[00:01.00]<00:01.00>{hostile}<00:02.00>")
    assert enhanced.lines[0].text == hostile


def test_control_characters_never_reach_a_line() -> None:
    lyrics = parse("[00:01.00]a\x00b\x1bc\u202ed\u2028[00:02.00]e\x0bf" + " pad" * 20)
    # \u2028 and \x0b are line breaks: "f pad..." is a line of its own, with no time.
    assert [line.text for line in lyrics.lines] == ["abcd", "e"]


def test_a_long_line_is_wrapped_into_balanced_lines_that_keep_their_times() -> None:
    lyrics = parse("[00:10.00]" + " ".join(f"w{i:02d}" for i in range(30)) + "\n[00:40.00]x")
    wrapped = lyrics.lines[:-1]
    assert len(wrapped) == 3 and {line.text.count(" ") for line in wrapped} == {9}
    assert wrapped[0].start == 10.0 and wrapped[-1].end == 10.0 + MAX_LINE_SECONDS
    assert wrapped[1].start == wrapped[0].end


def test_cjk_counts_double_and_a_line_without_spaces_is_cut_between_characters() -> None:
    chinese = "月亮代表我的心" * 5  # 35 characters, 70 columns
    lyrics = parse(f"[00:01.00]{chinese}\n{chinese}")
    assert [len(line.text) for line in lyrics.lines] == [18, 17]
    plain = parse(chinese + "\n" + "อ" * 100)  # Thai: no spaces, one column a letter
    assert [columns(line.text) for line in plain.lines] == [36, 34, 34, 34, 32]


def test_more_lines_than_a_song_has_are_refused_even_when_made_by_repeated_times() -> None:
    many = "\n".join(f"[{stamp(i)}][{stamp(i + 400)}]la" for i in range(300))
    with pytest.raises(LyricsTooLongError):
        parse_lyrics(many, source=USER)


@pytest.mark.parametrize(
    "text", ["[00:01.00]\n[00:02.00]", "[ar:x]\n[Chorus]", "[00:01.00]<00:01.00>"]
)
def test_lyrics_without_words_are_refused(text: str) -> None:
    with pytest.raises(NoWordsError):
        parse_lyrics(text, source=USER)


def test_times_past_a_day_are_dropped_without_a_duration() -> None:
    assert starts(parse("[9999:00.00]never\n[00:01.00]sung")) == [(1.0, "sung")]


@pytest.mark.parametrize(
    "text",
    [
        "[00:10.00]first line\n[00:12.50]\n[00:15.00]second line here\n[00:40.00]long",
        "[00:10.00]<00:10.00>Hel<00:10.30>lo <00:10.80>world<00:11.40>\n"
        "[00:12.00]<00:12.00>again <00:12.70>and <00:13.00>again",
        "Just\nplain words\n",
        "[00:01.00]" + " ".join(["wrap"] * 25),
    ],
    ids=["line", "word", "plain", "wrapped"],
)
def test_to_lrc_gives_back_the_same_lyrics(text: str) -> None:
    lyrics = parse(text)
    again = parse(to_lrc(lyrics))
    assert again.timing is lyrics.timing
    assert [line.text for line in again.lines] == [line.text for line in lyrics.lines]
    for mine, theirs in zip(lyrics.lines, again.lines, strict=True):
        assert (theirs.start, theirs.end) == pytest.approx((mine.start, mine.end), abs=0.006)
        assert [(w.text, w.start, w.end) for w in theirs.words] == [
            (w.text, pytest.approx(w.start, abs=0.006), pytest.approx(w.end, abs=0.006))
            for w in mine.words
        ]


def test_aligned_words_are_written_as_enhanced_lrc() -> None:
    words = (LyricWord("sung ", 1.0, 1.5), LyricWord("here", 1.5, 2.25))
    aligned = Lyrics((LyricLine("sung here", 1.0, 2.25, words),), Timing.ALIGNED, USER)
    assert to_lrc(aligned) == "[00:01.00]<00:01.00>sung <00:01.50>here<00:02.25>\n[00:02.25]"
    approximate = Lyrics((LyricLine("sung here", 1.0, 2.25),), Timing.APPROXIMATE, USER)
    assert to_lrc(approximate) == "[00:01.00]sung here\n[00:02.25]"


_PARTS = [
    "[00:01.00]", "[00:01.00]", "[-00:02.50]", "[03:59.99]", "[00:10:05]", "[00:07]",
    "<00:01.20>", "<00:00.50>", "<00:09.00>", "[offset:+700]", "[ar:x]", "\n", "\n", "\r\n",
    "la ", "word", " ", "  ", "{\\an8}", "\\N", "<b>", "\x00", "\x1b", "\u202e", "词语", "e\u0301",
    "\u200d", "[Chorus]", "x" * 60, "]", "[", "<", ">", ":",
]  # fmt: skip


@pytest.mark.parametrize("seed", range(300))
def test_any_mix_of_tags_and_hostile_text_parses_well_formed_or_is_refused(seed: int) -> None:
    pick = random.Random(seed)
    text = "".join(pick.choice(_PARTS) for _ in range(pick.randint(1, 60)))
    duration = pick.choice([None, 5.0, 60.0])
    try:
        lyrics = parse(text, duration)
    except LyricsInputError:
        return
    again = parse(to_lrc(lyrics), duration)
    assert again.timing is lyrics.timing
    assert [line.text for line in again.lines] == [line.text for line in lyrics.lines]
