"""Cover art out of an upload: one small JPEG, or None, through the sandbox."""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import pytest

from separation.video.cover import MAX_SIDE, MAX_SOURCE_PIXELS, extract_cover
from tests.support.media import FISHIN, TEST_CLIP, VIBE_ACE, make_tone, make_video


def _with_picture(tmp_path: Path, ffmpeg: str, side: int) -> Path:
    """An MP3 whose ID3 tag holds a ``side`` x ``side`` JPEG as its cover."""
    picture = tmp_path / f"cover-{side}.jpg"
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
         "-i", f"color=c=red:s={side}x{side}", "-frames:v", "1", "-y", str(picture)],
        check=True,
    )  # fmt: skip
    tone = make_tone(tmp_path / "tone.mp3", ffmpeg, seconds=2)
    song = tmp_path / f"song-{side}.mp3"
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(tone), "-i", str(picture),
         "-map", "0:a", "-map", "1:v", "-c", "copy", "-id3v2_version", "3",
         "-disposition:v", "attached_pic", "-y", str(song)],
        check=True,
    )  # fmt: skip
    return song


def _size(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.width, stream.codec_context.height


def test_the_songs_picture_comes_out_as_a_small_jpeg(ffmpeg: str, tmp_path: Path) -> None:
    cover = extract_cover(VIBE_ACE, tmp_path / "cover.jpg", ffmpeg=ffmpeg)
    assert cover == tmp_path / "cover.jpg"
    assert cover.read_bytes()[:2] == b"\xff\xd8"  # a JPEG
    assert max(_size(cover)) <= MAX_SIDE


def test_a_large_picture_is_scaled_down(ffmpeg: str, tmp_path: Path) -> None:
    cover = extract_cover(_with_picture(tmp_path, ffmpeg, 3000), tmp_path / "c.jpg", ffmpeg=ffmpeg)
    assert cover is not None
    assert _size(cover) == (MAX_SIDE, MAX_SIDE)


@pytest.mark.parametrize("song", [FISHIN, TEST_CLIP], ids=["ogg", "mp3"])
def test_a_song_without_a_picture_has_no_cover(song: Path, ffmpeg: str, tmp_path: Path) -> None:
    assert extract_cover(song, tmp_path / "cover.jpg", ffmpeg=ffmpeg) is None
    assert not (tmp_path / "cover.jpg").exists()


def test_a_video_stream_is_never_decoded(ffmpeg: str, tmp_path: Path) -> None:
    # An H.264 video with sound: its pictures are not cover art (and h264 is not allowed).
    video = make_video(tmp_path / "clip.mp4", ffmpeg, TEST_CLIP, 2)
    assert extract_cover(video, tmp_path / "cover.jpg", ffmpeg=ffmpeg) is None


def test_a_pixel_bomb_is_refused(ffmpeg: str, tmp_path: Path) -> None:
    # The same kind of file as the 3000-pixel one above, past max_pixels: the decoder
    # refuses it from its header, and the song's video gets the colour background.
    side = 5400
    assert side * side > MAX_SOURCE_PIXELS
    bomb = _with_picture(tmp_path, ffmpeg, side)
    assert extract_cover(bomb, tmp_path / "cover.jpg", ffmpeg=ffmpeg) is None
