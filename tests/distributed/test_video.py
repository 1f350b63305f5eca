"""Karaoke videos on the fleet (issue 24): a worker renders the video from the song's
shared stems and cover, the front-end gets the MP4 and its timing back from the shared
cache, a key change on a video is another video, and the song's tag lyrics reach the
front-end with the song.

Real PostgreSQL, real ``karaoke-bot worker`` processes.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from bot.distributed.wire import MANIFEST_NAME, ResultManifest
from separation.audio.render_options import RenderOptions
from separation.cache.extras import COVER
from separation.cache.render_keys import render_key
from separation.jobs import RenderRequest
from separation.lyrics.model import LyricsSource
from separation.video.request import VIDEO, VideoRequest
from tests.support.fleet import Fleet, read, request
from tests.support.pool import read_audio
from tests.support.video_songs import LRC, tagged_song

pytestmark = pytest.mark.slow

WORDS = VideoRequest(LRC, LyricsSource.TAGS, "Little world")


def _manifest(fleet: Fleet, cache_key: str) -> ResultManifest:
    return ResultManifest.from_json(
        (fleet.blobs / "results" / cache_key / MANIFEST_NAME).read_bytes()
    )


def _middle_frame_rgb(path, ffmpeg: str) -> np.ndarray:
    """The mean colour of the video's frame at 1 s, as (red, green, blue)."""
    raw = subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-ss", "1", "-i", str(path),
         "-frames:v", "1", "-vf", "scale=32:18", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).mean(axis=0)


async def test_a_video_and_a_key_change_on_it_render_on_a_worker(
    fleet: Fleet, tmp_path, shared_music, ffmpeg
):
    first = fleet.start_worker()
    fleet.wait_until_ready(first)
    front = await fleet.frontend()
    upload = tagged_song(
        tmp_path / "tagged.flac", ffmpeg, shared_music / "lets-go-fishin.ogg", lyrics=LRC,
        cover=True, seconds=4,
    )  # fmt: skip
    _, song = await read(await front.submit(request(upload)))
    song.release()
    assert song.tag_lyrics is not None and "Hello little" in song.tag_lyrics
    stems = {stem.name: stem.key for stem in _manifest(fleet, song.cache_key).stems}
    assert sorted(stems) == [COVER, "instrumental", "vocals"]
    assert stems[COVER].endswith(".jpg") and stems["vocals"].endswith(".stem.flac")

    # The worker that separated the song is gone: the next one copies the stems and
    # the cover back from the blob store.
    first.kill()
    first.wait(timeout=30)
    second = fleet.start_worker()
    fleet.wait_until_ready(second)
    plain = RenderRequest(song.cache_key, RenderOptions(), video=WORDS)
    lower = RenderRequest(song.cache_key, RenderOptions(key=-2), video=WORDS)
    assert await front.cached_render(plain) is None
    videos = [await front.render(plain), await front.render(lower)]
    try:
        for video in videos:
            assert list(video.outputs) == [VIDEO] and video.outputs[VIDEO].suffix == ".mp4"
            assert not video.cache_hit and video.lyrics_timing == "line"
            assert video.duration_seconds == pytest.approx(song.duration_seconds)
            red, _, blue = _middle_frame_rgb(video.outputs[VIDEO], ffmpeg)
            assert red > blue  # the song's red cover, not the calm blue background
        tracks = [read_audio(video.outputs[VIDEO], ffmpeg) for video in videos]
        frames = min(track.shape[1] for track in tracks)
        assert abs(tracks[0][:, :frames] - tracks[1][:, :frames]).max() > 0.01  # another key
        assert _manifest(fleet, render_key(lower)).lyrics_timing == "line"
    finally:
        for video in videos:
            video.release()
    log = fleet.worker_log(second)
    assert "copied the stems of" in log
    assert f"rendered {render_key(lower)[:12]} (k-2_t1.00_goff, video)" in log

    # Another front-end's press of the same video is a download, not a render.
    other = await fleet.frontend("other")
    again = await other.cached_render(lower)
    assert again is not None and again.cache_hit and again.lyrics_timing == "line"
    again.release()
