"""The glue: words parsed, aligned when untimed (on the vocals, at the song's own tempo),
scaled to the render's tempo, rendered.

The aligner is replaced here, because what is tested is the order of the steps, not
the alignment.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from separation.lyrics.model import LyricLine, Lyrics, LyricsSource, Timing
from separation.video import karaoke
from separation.video.request import VideoRequest
from tests.support.media import make_tone
from tests.support.video import stream_times

LRC = "[00:02.00]Hello there\n[00:04.00]second line\n"
SECONDS = 6.0


def _make(request: VideoRequest, tmp_path: Path, ffmpeg: str, tempo: float) -> Timing:
    song = make_tone(tmp_path / "instrumental.wav", ffmpeg, seconds=SECONDS / tempo)
    timing: Timing = karaoke.make_karaoke_video(
        request, instrumental=song, vocals=tmp_path / "vocals.wav", tempo=tempo,
        duration_seconds=SECONDS / tempo, output=tmp_path / "karaoke.mp4", ffmpeg=ffmpeg,
        workdir=tmp_path, max_bytes=None,
    )  # fmt: skip
    return timing


def _first_dialogue_start(tmp_path: Path) -> str:
    text = (tmp_path / "karaoke.ass").read_text()
    return next(line for line in text.splitlines() if "Hello" in line).split(",")[1]


def test_timed_lyrics_make_a_video_at_the_render_s_tempo(tmp_path: Path, ffmpeg: str) -> None:
    request = VideoRequest(LRC, LyricsSource.USER, title="Song")
    assert _make(request, tmp_path, ffmpeg, tempo=0.8) is Timing.LINE
    # Sung at 2.0 s in the song, 2.5 s at tempo 0.8: shown one second before.
    assert _first_dialogue_start(tmp_path) == "0:00:01.50"
    times = stream_times(tmp_path / "karaoke.mp4")
    assert times.video_seconds == pytest.approx(SECONDS / 0.8, abs=1 / request.look.fps)


def test_untimed_lyrics_without_alignment_are_refused(tmp_path: Path, ffmpeg: str) -> None:
    request = VideoRequest("Hello there\nsecond line", LyricsSource.USER, title="S", align=False)
    with pytest.raises(karaoke.UntimedLyricsError) as refused:
        _make(request, tmp_path, ffmpeg, tempo=1.0)
    assert "lrc" in refused.value.user_message.lower()
    assert not (tmp_path / "karaoke.mp4").exists()


def test_untimed_lyrics_are_aligned_on_the_vocals_before_the_tempo_scales_them(
    tmp_path: Path, ffmpeg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Path, float, bool]] = []

    def align(
        lyrics: Lyrics,
        vocals: Path,
        *,
        ffmpeg: str,
        duration_seconds: float,
        use_speech_model: bool,
    ) -> Lyrics:
        calls.append((vocals, duration_seconds, use_speech_model))
        lines = tuple(
            LyricLine(line.text, 2.0 + 2 * index, 3.5 + 2 * index)
            for index, line in enumerate(lyrics.lines)
        )
        return Lyrics(lines, Timing.APPROXIMATE, lyrics.source)

    monkeypatch.setattr(karaoke, "align_lyrics", align)
    request = VideoRequest(
        "Hello there\nsecond line", LyricsSource.LRCLIB, title="S", speech_model=False
    )
    assert _make(request, tmp_path, ffmpeg, tempo=0.8) is Timing.APPROXIMATE
    # The vocals stem is at the song's own tempo: aligned on its own length...
    # the switch reaches the aligner
    assert calls == [(tmp_path / "vocals.wav", pytest.approx(SECONDS), False)]
    # ...then every time divided by the tempo.
    assert _first_dialogue_start(tmp_path) == "0:00:01.50"
