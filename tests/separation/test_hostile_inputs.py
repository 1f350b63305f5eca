"""Hostile files against the hardened ffmpeg runs (``separation.audio.sandbox``), header to decode.

Every case here was an attack on the old ingest path (issue 10). The tests drive the real
ffmpeg; nothing may reach the network, which a listener on 127.0.0.1 proves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from separation.audio import sandbox
from separation.audio.decode import AudioLimits, decode_audio, inspect_audio, measure_duration
from separation.audio.ffmpeg import ProbeResult
from separation.audio.probe import probe
from separation.audio.sandbox import ChildLimits, run_sandboxed
from separation.errors import (
    AudioTooLongError,
    CorruptAudioError,
    InputLimitError,
    NotAudioError,
)
from tests.support.hostile import (
    counting_listener,
    cover_bomb,
    ffconcat,
    headerless,
    hls_playlist,
    lying_mp3,
    non_finite_wav,
    png_image,
    subtitles,
)
from tests.support.media import make_tone

LIMITS = AudioLimits()
PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server_secret(tmp_path_factory, ffmpeg) -> Path:
    """A file on "the server" that no upload may make ffmpeg read."""
    return make_tone(tmp_path_factory.mktemp("server") / "secret.mp3", ffmpeg, seconds=5)


@pytest.fixture(scope="module")
def huge_cover(tmp_path_factory, ffmpeg) -> Path:
    """A 16000x16000 PNG (under 1 MB on disk, ~770 MB once decoded)."""
    return png_image(tmp_path_factory.mktemp("cover") / "cover.png", ffmpeg, side=16000)


AS_AUDIO = ProbeResult(
    duration_seconds=5.0,
    duration_is_estimate=False,
    has_audio=True,
    audio_codec="mp3",
    sample_rate=44100,
    channels=2,
)
"""A header that says "audio": to prove the decode is hardened on its own as well."""


def _refused_by_probe_and_decode(path: Path, ffmpeg: str, tmp_path: Path) -> None:
    with pytest.raises(NotAudioError) as refused:
        inspect_audio(path, ffmpeg=ffmpeg, limits=LIMITS)
    assert refused.value.kind == "not_audio"
    with pytest.raises(CorruptAudioError):
        decode_audio(
            path, tmp_path / "raw.f32", ffmpeg=ffmpeg, sample_rate=44100, limits=LIMITS,
            info=AS_AUDIO,
        )  # fmt: skip


@pytest.mark.parametrize("name", ["song.m3u8", "song.m3u", "song.upload", "playlist"])
@pytest.mark.parametrize("live", [False, True], ids=["vod", "live"])
def test_a_playlist_of_a_server_file_is_refused(tmp_path, ffmpeg, server_secret, name, live):
    playlist = hls_playlist(tmp_path / name, str(server_secret), live=live)
    _refused_by_probe_and_decode(playlist, ffmpeg, tmp_path)


@pytest.mark.parametrize("name", ["song.m3u8", "song.upload"])
def test_a_playlist_of_a_url_opens_no_connection(tmp_path, ffmpeg, name):
    with counting_listener() as listener:
        for live in (False, True):
            playlist = hls_playlist(tmp_path / name, listener.url("a.ts"), live=live)
            _refused_by_probe_and_decode(playlist, ffmpeg, tmp_path)
            plain = tmp_path / "plain.m3u"
            plain.write_text(listener.url("song.mp3") + "\n")
            _refused_by_probe_and_decode(plain, ffmpeg, tmp_path)
    assert listener.accepted == 0


def test_concat_lists_images_and_subtitles_are_not_audio(tmp_path, ffmpeg, server_secret):
    for path in (
        ffconcat(tmp_path / "list.ffconcat", server_secret),
        ffconcat(tmp_path / "list.upload", server_secret),
        png_image(tmp_path / "img001.png", ffmpeg),
        subtitles(tmp_path / "song.srt"),
    ):
        _refused_by_probe_and_decode(path, ffmpeg, tmp_path)


def _ffmpeg_peak_in_a_small_process(path: Path, workdir: Path) -> dict:
    """Probe and decode ``path`` in a fresh Python without torch; report the peak memory
    of its ffmpeg children (Linux carries a parent's peak into its children, so this
    must not run in the test process)."""
    script = textwrap.dedent(
        f"""
        import json, resource, time
        from pathlib import Path
        from separation.audio.decode import AudioLimits, decode_audio, inspect_audio
        from separation.audio.ffmpeg import find_ffmpeg
        ffmpeg, limits, started = find_ffmpeg(), AudioLimits(), time.monotonic()
        info = inspect_audio(Path({str(path)!r}), ffmpeg=ffmpeg, limits=limits)
        audio = decode_audio(Path({str(path)!r}), Path({str(workdir / "raw.f32")!r}),
                             ffmpeg=ffmpeg, sample_rate=44100, limits=limits, info=info)
        print(json.dumps({{
            "seconds": audio.duration_seconds,
            "wall": time.monotonic() - started,
            "peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "self_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }}))
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True, text=True, timeout=120, cwd=PROJECT, check=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )  # fmt: skip
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("container", ["mp3", "mkv"])
def test_an_attached_picture_bomb_is_never_decoded(tmp_path, ffmpeg, huge_cover, container):
    """The old probe decoded the covers: 770 MB and 4 s for a 1 MB MP3 with one, over
    4 GB and 30 s for a 7 MB Matroska file with eight."""
    bomb = cover_bomb(tmp_path / f"bomb.{container}", ffmpeg, huge_cover, copies=8)
    assert bomb.stat().st_size < 8_000_000
    measured = _ffmpeg_peak_in_a_small_process(bomb, tmp_path)
    assert measured["seconds"] == pytest.approx(5.0, abs=0.1)
    # The children's figure includes the small parent's own size (see above).
    assert measured["peak_mib"] < max(measured["self_mib"], 60) + 60, measured
    assert measured["wall"] < 5, measured


@pytest.fixture(params=["prlimit", "preexec_fn"])
def limits_applied_by(request, monkeypatch) -> str:
    """Both ways the sandbox applies OS limits: util-linux's prlimit, else a preexec_fn."""
    if request.param == "preexec_fn":
        monkeypatch.setattr(sandbox, "_prlimit", lambda: None)
    elif sandbox._prlimit() is None:
        pytest.skip("no prlimit on this machine (util-linux); the preexec_fn case runs")
    return request.param


def test_a_normal_song_decodes_under_the_limits(tmp_path, ffmpeg, clip_path, limits_applied_by):
    info = inspect_audio(clip_path, ffmpeg=ffmpeg, limits=LIMITS)
    audio = decode_audio(
        clip_path, tmp_path / "raw.f32", ffmpeg=ffmpeg, sample_rate=44100, limits=LIMITS, info=info
    )
    assert audio.duration_seconds == pytest.approx(20.0, abs=0.1)


def test_the_memory_limit_is_applied_to_the_header_reader_and_ffmpeg(
    tmp_path, ffmpeg, limits_applied_by
):
    song = make_tone(tmp_path / "tone.mp3", ffmpeg, seconds=2)
    starved = AudioLimits(ffmpeg_memory_bytes=16 * 2**20)
    with pytest.raises(InputLimitError) as stopped:
        inspect_audio(song, ffmpeg=ffmpeg, limits=starved)
    assert stopped.value.kind == "input_limit"
    assert "memory" in stopped.value.detail
    with pytest.raises(InputLimitError) as stopped:
        decode_audio(
            song, tmp_path / "raw.f32", ffmpeg=ffmpeg, sample_rate=44100, limits=starved,
            info=AS_AUDIO,
        )  # fmt: skip
    assert "memory" in stopped.value.user_message


def test_a_header_read_that_hangs_is_stopped_at_its_deadline(tmp_path, ffmpeg, limits_applied_by):
    """A FIFO with no writer blocks the reader's open() forever."""
    never_written = tmp_path / "upload"
    os.mkfifo(never_written)
    limits = AudioLimits(probe_timeout_seconds=0.5)
    with pytest.raises(InputLimitError) as stopped:
        probe(never_written, ffmpeg=ffmpeg, limits=limits.probe_limits())
    assert "within 0 s" in stopped.value.detail or "within 1 s" in stopped.value.detail


def test_an_ffmpeg_run_that_hangs_is_stopped_at_its_deadline(
    tmp_path, ffmpeg, hanging_ffmpeg, limits_applied_by
):
    song = make_tone(tmp_path / "tone.mp3", ffmpeg, seconds=2)
    with pytest.raises(InputLimitError) as stopped:
        run_sandboxed(
            [hanging_ffmpeg, "-i", str(song), "-f", "null", "-"],
            ChildLimits(0.5, LIMITS.ffmpeg_memory_bytes),
            what="decode",
        )
    assert "within 0 s" in stopped.value.detail or "within 1 s" in stopped.value.detail


def test_a_lying_header_is_decoded_for_what_it_is(tmp_path, ffmpeg):
    liar = lying_mp3(tmp_path / "liar.mp3", ffmpeg, tmp_path, claims=2, plays=40)
    info = inspect_audio(liar, ffmpeg=ffmpeg, limits=LIMITS)
    assert info.duration_seconds == pytest.approx(2.0, abs=0.1)
    audio = decode_audio(
        liar, tmp_path / "raw.f32", ffmpeg=ffmpeg, sample_rate=44100, limits=LIMITS, info=info
    )
    assert audio.duration_seconds == pytest.approx(40.0, abs=0.2)


def test_decoding_stops_just_past_the_limit_whatever_the_header_says(tmp_path, ffmpeg):
    liar = lying_mp3(tmp_path / "liar.mp3", ffmpeg, tmp_path, claims=2, plays=60)
    limits = AudioLimits(max_duration_seconds=10)
    info = inspect_audio(liar, ffmpeg=ffmpeg, limits=limits)
    raw = tmp_path / "raw.f32"
    with pytest.raises(AudioTooLongError):
        decode_audio(liar, raw, ffmpeg=ffmpeg, sample_rate=44100, limits=limits, info=info)
    assert raw.stat().st_size <= 11 * 44100 * 2 * 4  # the limit plus one second, no more


def test_a_file_without_a_length_is_measured_within_the_limit(tmp_path, ffmpeg):
    hidden = headerless(tmp_path / "stream.mkv", ffmpeg, seconds=30)
    info = inspect_audio(hidden, ffmpeg=ffmpeg, limits=LIMITS)
    assert info.duration_seconds is None and info.has_audio
    assert measure_duration(hidden, ffmpeg=ffmpeg, limits=LIMITS) == pytest.approx(30, abs=0.2)
    with pytest.raises(AudioTooLongError):
        measure_duration(hidden, ffmpeg=ffmpeg, limits=AudioLimits(max_duration_seconds=10))


def test_samples_that_are_not_numbers_are_a_damaged_file(tmp_path, ffmpeg):
    wav = non_finite_wav(tmp_path / "nan.wav")
    info = inspect_audio(wav, ffmpeg=ffmpeg, limits=LIMITS)
    with pytest.raises(CorruptAudioError) as damaged:
        decode_audio(
            wav, tmp_path / "raw.f32", ffmpeg=ffmpeg, sample_rate=44100, limits=LIMITS, info=info
        )
    assert "non-finite" in damaged.value.detail
    assert "damaged" in damaged.value.user_message
