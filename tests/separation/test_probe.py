"""The header is read from libavformat's fields, never from text a tag can forge or push
out (issue 20): songs with huge tags, many tags or tags imitating ffmpeg's banner are read
for what they are, and the tags that come back are bounded."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from separation.audio.decode import AudioLimits, inspect_audio
from separation.audio.header_reader import (
    MAX_TAG_NAME_CHARS,
    MAX_TAG_VALUE_CHARS,
    MAX_TAGS,
    TAGS_BUDGET_BYTES,
    bounded_tags,
)
from separation.audio.probe import probe
from separation.audio.sandbox import ChildLimits
from separation.errors import HeaderReaderError, InputLimitError
from tests.support import hostile
from tests.support.hostile import FORGED_BANNER, LYRICS_1_MB

LIMITS = AudioLimits()
SONG_SECONDS = 20.0


def tagged_song(path: Path, ffmpeg: str, tags: Mapping[str, str]) -> Path:
    return hostile.tagged_song(path, ffmpeg, tags, seconds=SONG_SECONDS)


def _assert_read_as_the_song(path: Path, ffmpeg: str) -> dict[str, str]:
    """``path`` is admitted as the 20 s stereo 44.1 kHz song it is; its tags returned."""
    info = inspect_audio(path, ffmpeg=ffmpeg, limits=LIMITS)
    assert info.duration_seconds == pytest.approx(SONG_SECONDS, abs=0.1)
    assert not info.duration_is_estimate
    assert (info.sample_rate, info.channels) == (44100, 2)
    return info.tags


@pytest.mark.parametrize("extension", ["mp3", "ogg", "flac"])
def test_a_1_mb_tag_is_read_cut_and_the_song_accepted(tmp_path, ffmpeg, extension):
    """The banner parser lost the header after 16 KiB of stderr: 'not audio'."""
    song = tagged_song(
        tmp_path / f"song.{extension}", ffmpeg, {"lyrics": LYRICS_1_MB, "title": "Long Song"}
    )
    assert song.stat().st_size > 2**20
    tags = _assert_read_as_the_song(song, ffmpeg)
    assert tags["title"] == "Long Song"
    assert LYRICS_1_MB.startswith(tags["lyrics"])
    assert MAX_TAG_VALUE_CHARS - 30 < len(tags["lyrics"]) <= MAX_TAG_VALUE_CHARS


@pytest.mark.parametrize("extension", ["mp3", "ogg", "flac"])
def test_tags_imitating_ffmpegs_banner_do_not_change_the_header(tmp_path, ffmpeg, extension):
    """A tag name and a tag value holding fake "Duration:" and "Stream #0" lines (the
    banner parser read the first as a 1 s, 8 kHz, mono song)."""
    song = tagged_song(
        tmp_path / f"forged.{extension}",
        ffmpeg,
        {FORGED_BANNER: "v", "comment": FORGED_BANNER, "title": "Forged"},
    )
    tags = _assert_read_as_the_song(song, ffmpeg)
    assert tags["title"] == "Forged"
    assert tags["comment"] == FORGED_BANNER  # kept as text, newlines and all
    forged_name = next(name for name in tags if "duration" in name)
    assert "\n" not in forged_name and len(forged_name) <= MAX_TAG_NAME_CHARS


def test_10_000_tags_are_read_within_bounds_and_the_title_is_kept(tmp_path, ffmpeg):
    many = {f"note{number:05d}": f"value {number}" for number in range(10_000)}
    song = tagged_song(tmp_path / "many.mp3", ffmpeg, {**many, "title": "Buried Title"})
    # Bounded time and memory: well inside a tight deadline and a small address space.
    tight = ChildLimits(wall_seconds=15, memory_bytes=256 * 2**20)
    info = probe(song, ffmpeg=ffmpeg, limits=tight)
    assert info.duration_seconds == pytest.approx(SONG_SECONDS, abs=0.1)
    assert (info.sample_rate, info.channels) == (44100, 2)
    assert info.tags["title"] == "Buried Title"  # written after the 10 000 others
    assert len(info.tags) == MAX_TAGS


@pytest.fixture(scope="module")
def song_with_24_mb_of_lyrics(tmp_path_factory, ffmpeg) -> Path:
    folder = tmp_path_factory.mktemp("huge")
    return tagged_song(folder / "huge.mp3", ffmpeg, {"lyrics": LYRICS_1_MB * 24})


def test_a_24_mb_tag_is_read_under_the_normal_limit(song_with_24_mb_of_lyrics, ffmpeg):
    """The banner parser wrote 24 MB of stderr and was killed at its 16 MiB file limit."""
    tags = _assert_read_as_the_song(song_with_24_mb_of_lyrics, ffmpeg)
    assert len(tags["lyrics"]) <= MAX_TAG_VALUE_CHARS


@pytest.mark.parametrize("memory_mib", [128, 160, 192, 256])
def test_a_24_mb_tag_is_never_not_audio(song_with_24_mb_of_lyrics, ffmpeg, memory_mib):
    """Under a small memory limit, libavformat drops a tag it cannot allocate (the song
    is read) or the reader runs out of memory (refused for that, no quota, the right
    sentence), depending on where the limit falls; never 'not audio'."""
    small = AudioLimits(ffmpeg_memory_bytes=memory_mib * 2**20)
    try:
        info = inspect_audio(song_with_24_mb_of_lyrics, ffmpeg=ffmpeg, limits=small)
    except InputLimitError as stopped:
        assert "memory" in stopped.detail
        assert "too much memory" in stopped.user_message
    else:
        assert (info.duration_seconds, info.sample_rate, info.channels) == (20.0, 44100, 2)


def test_real_songs_probe_right(ffmpeg, shared_music):
    clip = inspect_audio(shared_music / "demucs-test-clip.mp3", ffmpeg=ffmpeg, limits=LIMITS)
    assert (clip.audio_codec, clip.sample_rate, clip.channels) == ("mp3", 44100, 2)
    assert clip.duration_seconds == pytest.approx(20.0, abs=0.05)
    fishin = inspect_audio(shared_music / "lets-go-fishin.ogg", ffmpeg=ffmpeg, limits=LIMITS)
    assert (fishin.audio_codec, fishin.sample_rate, fishin.channels) == ("vorbis", 44100, 2)
    assert fishin.duration_seconds == pytest.approx(133.0, abs=0.1)
    assert fishin.tags["title"] == "Let's Go Fishin'"
    assert fishin.tags["artist"] == "Karissa Hobbs"


def test_without_pyav_the_server_is_at_fault_not_the_upload(tmp_path, ffmpeg):
    """A Python without PyAV: every upload would be 'not audio' if this were not told apart."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True
    )
    without_pyav = AudioLimits(header_reader_python=str(tmp_path / "venv" / "bin" / "python"))
    song = tagged_song(tmp_path / "song.mp3", ffmpeg, {"title": "Fine"})
    with pytest.raises(HeaderReaderError) as broken:
        inspect_audio(song, ffmpeg=ffmpeg, limits=without_pyav)
    assert "PyAV is not installed" in str(broken.value)


def test_tags_are_bounded_and_cleaned_whatever_they_hold():
    strangers = {
        f'name {number}\x1b[31m"\\': '"\\\x00\x07\u202e\u200b' * 5000 for number in range(100)
    }
    kept = bounded_tags([strangers, {"title": "From the stream"}])
    assert kept["title"] == "From the stream"  # preferred names first, wherever they are
    assert len(kept) <= MAX_TAGS
    assert sum(len(json.dumps(k)) + len(json.dumps(v)) + 2 for k, v in kept.items()) <= (
        TAGS_BUDGET_BYTES
    )
    for name, value in kept.items():
        assert name == name.lower() and len(name) <= MAX_TAG_NAME_CHARS
        assert len(value) <= MAX_TAG_VALUE_CHARS
        assert not any(c in name + value for c in "\x00\x07\x1b\u202e\u200b")
