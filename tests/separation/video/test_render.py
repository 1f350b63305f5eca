"""Rendered karaoke videos, checked on their pixels and streams: the fill over the word
being sung, the length, the sound track, hostile markup, scripts, backgrounds, size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from separation.errors import OutputTooLargeError
from separation.video import fonts
from separation.video.ass import UPPER_SLOT_BOTTOM, font_size
from separation.video.cover import extract_cover
from separation.video.render import RenderedVideo
from separation.video.request import VideoLook
from tests.support.media import TEST_CLIP, VIBE_ACE, decode_file, excerpt
from tests.support.video import (
    frame_at,
    line_lyrics,
    near,
    render_lyrics,
    stream_times,
    timed_line,
    word_lyrics,
)

LOOK = VideoLook()
SONG_SECONDS = 10.0
HEIGHT = LOOK.height


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory, ffmpeg: str) -> Path:
    """Ten seconds of real music as the instrumental (AAC is judged on music, not tones)."""
    folder = tmp_path_factory.mktemp("song")
    return excerpt(TEST_CLIP, folder / "instrumental.wav", ffmpeg, SONG_SECONDS)


@pytest.fixture(scope="module")
def karaoke(tmp_path_factory: pytest.TempPathFactory, song: Path, ffmpeg: str) -> RenderedVideo:
    """Two words on the upper line (sung 2.0-2.6 s and 3.4-4.0 s), shown from 1.0 s."""
    lyrics = word_lyrics(
        timed_line(("HOLD ", 2.0, 2.6), ("WAIT", 3.4, 4.0)),
        timed_line(("next ", 5.0, 5.5), ("line", 5.5, 6.0)),
    )
    folder = tmp_path_factory.mktemp("karaoke")
    return render_lyrics(lyrics, song, folder, ffmpeg, duration_seconds=SONG_SECONDS)


def _upper_band(frame: np.ndarray) -> np.ndarray:
    bottom = round(HEIGHT * UPPER_SLOT_BOTTOM)
    return frame[bottom - 2 * font_size(LOOK) : bottom + 4]


def test_the_word_being_sung_is_filled_and_the_next_is_not(
    karaoke: RenderedVideo, ffmpeg: str
) -> None:
    middle = LOOK.width // 2
    before = _upper_band(frame_at(karaoke.path, ffmpeg, 0.5, LOOK))
    assert not near(before, LOOK.fill_colour).any() and not near(before, "#ffffff").any()

    between = _upper_band(frame_at(karaoke.path, ffmpeg, 3.0, LOOK))
    filled = near(between, LOOK.fill_colour)
    # "HOLD " (left of the centre) is filled; "WAIT" (right of it) is still white.
    assert filled[:, :middle].sum() > 200
    assert filled[:, middle:].sum() == 0
    assert near(between, "#ffffff")[:, middle:].sum() > 200

    after = _upper_band(frame_at(karaoke.path, ffmpeg, 4.2, LOOK))
    assert near(after, LOOK.fill_colour)[:, middle:].sum() > 200


def test_the_video_lasts_as_long_as_the_song(karaoke: RenderedVideo) -> None:
    times = stream_times(karaoke.path)
    frame = 1 / LOOK.fps
    assert times.video_seconds == pytest.approx(SONG_SECONDS, abs=frame)
    assert times.audio_seconds == pytest.approx(SONG_SECONDS, abs=frame)


def test_the_sound_track_is_the_instrumental(
    karaoke: RenderedVideo, song: Path, ffmpeg: str, tmp_path: Path
) -> None:
    original = decode_file(song, ffmpeg, tmp_path).read_all().mean(axis=0)
    heard = decode_file(karaoke.path, ffmpeg, tmp_path).read_all().mean(axis=0)
    # AAC may shift the track by its priming samples: find the lag first.
    window = original[44100:88200]
    lags = range(-2048, 2049, 1)
    best = max(lags, key=lambda lag: float(np.dot(window, heard[44100 + lag : 88200 + lag])))
    length = min(len(original), len(heard) - max(best, 0)) - 4096
    a = original[4096 : 4096 + length]
    b = heard[4096 + best : 4096 + best + length]
    correlation = float(np.corrcoef(a, b)[0, 1])
    snr_db = 10 * np.log10(np.sum(a**2) / np.sum((a - b) ** 2))
    # 192 kb/s AAC keeps this music at 25.7 dB SNR, correlation 0.9987 (measured); any
    # other track (the vocals, silence, a shifted copy) correlates far below 0.95.
    assert abs(best) <= 2048
    assert correlation > 0.99
    assert snr_db > 15


@pytest.mark.parametrize(
    "hostile", [r"{\c&H0000FF&}RED{\fs300}HUGE", r"{\p1}m 0 0 l 400 0 400 400 0 400{\p0}"]
)
def test_markup_in_the_words_is_drawn_as_text(
    hostile: str, song: Path, ffmpeg: str, tmp_path: Path
) -> None:
    lyrics = word_lyrics(timed_line((hostile, 1.5, 2.0)))
    video = render_lyrics(lyrics, song, tmp_path, ffmpeg, duration_seconds=3.0, title=hostile)
    frame = frame_at(video.path, ffmpeg, 1.0, LOOK)
    assert not near(frame, "#ff0000", tolerance=90).any()  # no \c red
    ink = near(frame, "#ffffff").any(axis=1)
    rows = np.flatnonzero(ink)
    assert rows.size > 0
    # Drawn as text of the style's size (wrapped onto two rows at most), not at \fs300
    # and not as a 400-pixel drawing.
    assert rows[-1] - rows[0] < 3 * font_size(LOOK)


def _ink(text: str, song: Path, ffmpeg: str, folder: Path) -> np.ndarray:
    folder.mkdir()
    video = render_lyrics(
        word_lyrics(timed_line((text, 2.0, 2.5))), song, folder, ffmpeg, duration_seconds=3.0
    )
    return near(frame_at(video.path, ffmpeg, 1.5, LOOK), "#ffffff")


@pytest.mark.parametrize(
    ("script", "text"),
    [
        ("arabic", "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645"),
        ("hebrew", "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd"),
        ("cjk", "\u4f60\u597d\u4e16\u754c \u3053\u3093\u306b\u3061\u306f \uc548\ub155"),
        ("mixed", "Hello \u4f60\u597d \u05e9\u05dc\u05d5\u05dd \uff5b\uff3c\uff5d"),
    ],
)
def test_every_script_draws_glyphs_not_boxes(
    script: str, text: str, song: Path, ffmpeg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A host without fonts: only the packages' fonts can draw anything.
    bare = tmp_path / "no-fonts.conf"
    bare.write_text("<?xml version='1.0'?><fontconfig></fontconfig>")
    monkeypatch.setenv("FONTCONFIG_FILE", str(bare))
    drawn = _ink(text, song, ffmpeg, tmp_path / script)
    # The same words with the style's font alone (Latin, Greek, Cyrillic): what a broken
    # fallback draws, boxes where the script's font should have taken over. (A fallback
    # that never ran drew exactly this, issue 24's review: a relative fonts folder.)
    only_style_font = fonts.shipped_fonts()[:1]
    monkeypatch.setattr(fonts, "shipped_fonts", lambda: only_style_font)
    boxes = _ink(text, song, ffmpeg, tmp_path / "boxes")
    assert drawn.sum() > 300
    assert (drawn ^ boxes).sum() > 0.3 * drawn.sum(), f"{script} drew missing-glyph boxes"


def test_cyrillic_and_greek_draw_glyphs_not_boxes(
    song: Path, ffmpeg: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = tmp_path / "no-fonts.conf"
    bare.write_text("<?xml version='1.0'?><fontconfig></fontconfig>")
    monkeypatch.setenv("FONTCONFIG_FILE", str(bare))
    text = "\u041f\u0440\u0438\u0432\u0435\u0442 \u0393\u03b5\u03b9\u03ac"
    # Egyptian hieroglyphs are in none of the fonts: they draw the missing-glyph box.
    missing = "".join("\U00013000" if char != " " else " " for char in text)
    drawn = _ink(text, song, ffmpeg, tmp_path / "cyrillic-greek")
    boxes = _ink(missing, song, ffmpeg, tmp_path / "boxes")
    assert drawn.sum() > 300
    assert (drawn ^ boxes).sum() > 0.5 * drawn.sum(), "Cyrillic/Greek drew missing-glyph boxes"


def test_right_to_left_lines_fill_from_the_right(song: Path, ffmpeg: str, tmp_path: Path) -> None:
    lyrics = word_lyrics(
        timed_line(("\u05e9\u05dc\u05d5\u05dd ", 1.5, 1.8), ("\u05e2\u05d5\u05dc\u05dd", 2.6, 3.0))
    )
    video = render_lyrics(lyrics, song, tmp_path, ffmpeg, duration_seconds=3.5)
    filled = near(_upper_band(frame_at(video.path, ffmpeg, 2.2, LOOK)), LOOK.fill_colour)
    middle = LOOK.width // 2
    assert filled[:, middle:].sum() > 100  # the first word, read first, is on the right
    assert filled[:, :middle].sum() == 0


def test_lines_are_large_enough_for_a_phone(song: Path, ffmpeg: str, tmp_path: Path) -> None:
    video = render_lyrics(
        word_lyrics(timed_line(("Hg Hg", 2.0, 2.5))), song, tmp_path, ffmpeg, duration_seconds=3.0
    )
    rows = np.flatnonzero(near(frame_at(video.path, ffmpeg, 1.5, LOOK), "#ffffff").any(axis=1))
    assert rows[-1] - rows[0] + 1 >= 0.06 * HEIGHT


def test_cover_art_is_the_background_else_the_colour(
    song: Path, ffmpeg: str, tmp_path: Path
) -> None:
    cover = extract_cover(VIBE_ACE, tmp_path / "cover.jpg", ffmpeg=ffmpeg)
    assert cover is not None
    lyrics = word_lyrics(timed_line(("la", 2.0, 2.5)))
    (tmp_path / "plain").mkdir()
    (tmp_path / "art").mkdir()
    plain = render_lyrics(lyrics, song, tmp_path / "plain", ffmpeg, duration_seconds=3.0)
    art = render_lyrics(lyrics, song, tmp_path / "art", ffmpeg, duration_seconds=3.0, cover=cover)
    corner_plain = frame_at(plain.path, ffmpeg, 1.0, LOOK)[:60, :120]
    corner_art = frame_at(art.path, ffmpeg, 1.0, LOOK)[:60, :120]
    assert near(corner_plain, LOOK.background, tolerance=8).all()
    assert not near(corner_art, LOOK.background, tolerance=8).all()
    # Dimmed: words stay readable over any picture.
    assert corner_art.mean() < 160


def test_the_size_limit_is_kept_or_refused(song: Path, ffmpeg: str, tmp_path: Path) -> None:
    lyrics = word_lyrics(timed_line(("la", 2.0, 2.5)))
    with pytest.raises(OutputTooLargeError):
        render_lyrics(
            lyrics, song, tmp_path, ffmpeg, duration_seconds=SONG_SECONDS, max_bytes=150_000
        )
    assert not list(tmp_path.glob("*.mp4*"))
    fitted = render_lyrics(
        lyrics, song, tmp_path, ffmpeg, duration_seconds=SONG_SECONDS, max_bytes=400_000
    )
    assert fitted.size_bytes == fitted.path.stat().st_size <= 400_000


@pytest.mark.parametrize(
    "text",
    [
        "\u6211\u4eec\u628a\u65e9\u6668\u6298\u6210\u7eb8\u8239\u8ba9\u5b83\u4eec\u6cbf\u7740"
        "\u4e0b\u96e8\u7684\u8857\u9053\u822a\u884c\u6392\u6c34\u6c9f\u54fc\u7740\u4e00\u9996",
        "x" * 70,
    ],
    ids=["chinese", "one-long-word"],
)
def test_a_line_without_spaces_wraps_inside_the_frame(
    text: str, song: Path, ffmpeg: str, tmp_path: Path
) -> None:
    lyrics = line_lyrics((text, 2.0, 4.0))
    video = render_lyrics(lyrics, song, tmp_path, ffmpeg, duration_seconds=4.5)
    ink = near(frame_at(video.path, ffmpeg, 1.5, LOOK), "#ffffff")
    assert ink.sum() > 1000
    assert not ink[:, :8].any() and not ink[:, -8:].any()  # nothing runs off the sides
    rows = np.flatnonzero(ink.any(axis=1))
    assert rows[-1] - rows[0] > 1.5 * font_size(LOOK)  # two rows
