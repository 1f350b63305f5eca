"""Audio in: every format users send, and every kind of bad input, generated here."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from separation.audio.decode import AudioLimits, decode_audio, inspect_audio
from separation.audio.ffmpeg import ProbeResult
from separation.errors import (
    AudioInputError,
    AudioTooLargeError,
    AudioTooLongError,
    CorruptAudioError,
    EmptyAudioError,
    NotAudioError,
)
from tests.support.media import excerpt, generate, make_tone, make_video

# (file name, ffmpeg output arguments): what Telegram and Discord users actually send.
FORMATS = {
    "song.mp3": ["-c:a", "libmp3lame", "-b:a", "192k"],
    "song.m4a": ["-c:a", "aac", "-b:a", "128k"],
    "song.ogg": ["-c:a", "libvorbis"],
    "voice.oga": ["-ac", "1", "-ar", "48000", "-c:a", "libopus", "-b:a", "32k", "-f", "ogg"],
    "song.flac": ["-c:a", "flac"],
    "song.wav": ["-c:a", "pcm_s16le"],
    "alac.m4a": ["-c:a", "alac"],
    "clip.webm": ["-c:a", "libopus"],
}


def _decode(path: Path, tmp_path: Path, ffmpeg: str, **limits: float) -> object:
    return decode_audio(
        path,
        tmp_path / "decoded.f32",
        ffmpeg=ffmpeg,
        sample_rate=44100,
        limits=AudioLimits(**limits),
    )


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_decodes_common_formats_to_stereo_44k(name, tmp_path, ffmpeg, clip_path):
    source = excerpt(clip_path, tmp_path / name, ffmpeg, 3, *FORMATS[name])
    audio = _decode(source, tmp_path, ffmpeg)
    assert audio.sample_rate == 44100
    assert abs(audio.duration_seconds - 3.0) < 0.08
    samples = audio.read_all()
    assert samples.shape == (2, audio.frames)
    assert samples.dtype == np.float32
    assert 0.01 < np.abs(samples).max() <= 1.5


def test_video_with_audio_track_is_accepted(tmp_path, ffmpeg, clip_path):
    video = make_video(tmp_path / "clip.mp4", ffmpeg, clip_path, 3)
    audio = _decode(video, tmp_path, ffmpeg)
    assert abs(audio.duration_seconds - 3.0) < 0.1


def test_embedded_cover_art_is_ignored_and_tags_kept(tmp_path, ffmpeg, shared_music):
    audio = _decode(shared_music / "vibe-ace.ogg", tmp_path, ffmpeg)
    assert abs(audio.duration_seconds - 61.46) < 0.05
    assert audio.tags["title"] == "Vibe Ace"
    assert audio.tags["artist"] == "Kevin MacLeod"


def test_mono_is_duplicated_without_level_change(tmp_path, ffmpeg):
    tone = make_tone(tmp_path / "mono.wav", ffmpeg, seconds=1, channels=1)
    original = np.frombuffer(
        subprocess.run(
            [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(tone), "-f", "f32le", "-"],
            check=True,
            capture_output=True,
        ).stdout,
        dtype="<f4",
    )
    samples = _decode(tone, tmp_path, ffmpeg).read_all()
    np.testing.assert_array_equal(samples[0], original)  # ffmpeg's -ac 2 would be -3 dB
    np.testing.assert_array_equal(samples[1], original)


def test_surround_is_downmixed_to_stereo(tmp_path, ffmpeg):
    surround = make_tone(tmp_path / "surround.wav", ffmpeg, seconds=1, channels=6)
    audio = _decode(surround, tmp_path, ffmpeg)
    assert audio.file_channels == 2
    assert audio.read_all().shape == (2, 44100)


def test_resamples_to_model_rate(tmp_path, ffmpeg):
    tone = make_tone(tmp_path / "low.wav", ffmpeg, seconds=2, rate=22050)
    audio = _decode(tone, tmp_path, ffmpeg)
    assert abs(audio.frames - 2 * 44100) <= 64


def test_mono_mix_statistics_match_demucs(tmp_path, ffmpeg, clip_path):
    import torch

    audio = _decode(clip_path, tmp_path, ffmpeg)
    mono = torch.from_numpy(audio.read_all()).mean(0)
    assert audio.mean == pytest.approx(float(mono.mean()), abs=1e-6)
    assert audio.std == pytest.approx(float(mono.std()), rel=1e-5)


def test_odd_file_names_are_not_interpreted(tmp_path, ffmpeg, clip_path):
    odd = tmp_path / "-y concat:x ;rm -rf $(HOME) 'ü|*.mp3"
    excerpt(clip_path, odd, ffmpeg, 1, "-c:a", "libmp3lame", "-f", "mp3")
    assert abs(_decode(odd, tmp_path, ffmpeg).duration_seconds - 1.0) < 0.06


# -- bad input ---------------------------------------------------------------------------


def test_empty_file(tmp_path, ffmpeg):
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    with pytest.raises(EmptyAudioError):
        _decode(empty, tmp_path, ffmpeg)


def test_text_file_is_not_audio(tmp_path, ffmpeg):
    text = tmp_path / "song.mp3"
    text.write_text("definitely not a song\n" * 100)
    with pytest.raises(NotAudioError):
        _decode(text, tmp_path, ffmpeg)


def test_random_bytes_are_not_audio(tmp_path, ffmpeg):
    noise = tmp_path / "noise.ogg"
    noise.write_bytes(np.random.default_rng(0).bytes(20000))
    with pytest.raises(NotAudioError):
        _decode(noise, tmp_path, ffmpeg)


def test_video_without_audio_is_not_audio(tmp_path, ffmpeg):
    video = tmp_path / "silent.mp4"
    generate(video, ffmpeg, "color=c=black:s=32x32:d=1")
    with pytest.raises(NotAudioError) as caught:
        _decode(video, tmp_path, ffmpeg)
    assert caught.value.detail == "no audio stream"


def test_truncated_upload_is_corrupt(tmp_path, ffmpeg, clip_path):
    truncated = tmp_path / "cut.mp3"
    truncated.write_bytes(clip_path.read_bytes()[:250_000])  # 6 of 20 announced seconds
    with pytest.raises(CorruptAudioError):
        _decode(truncated, tmp_path, ffmpeg)


def test_garbage_after_a_valid_header_is_corrupt(tmp_path, ffmpeg, clip_path):
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(clip_path.read_bytes()[:2000] + np.random.default_rng(1).bytes(300_000))
    with pytest.raises(CorruptAudioError):
        _decode(broken, tmp_path, ffmpeg)


def test_digital_silence_is_refused_as_empty(tmp_path, ffmpeg):
    silence = tmp_path / "silence.wav"
    generate(silence, ffmpeg, "anullsrc=r=44100:cl=stereo", "-t", "2")
    with pytest.raises(EmptyAudioError):
        _decode(silence, tmp_path, ffmpeg)


def test_too_large_is_refused_before_ffmpeg_runs(tmp_path, ffmpeg, clip_path):
    with pytest.raises(AudioTooLargeError) as caught:
        _decode(clip_path, tmp_path, "/nonexistent/ffmpeg", max_input_bytes=100_000)
    assert caught.value.limit_bytes == 100_000


def test_tiny_file_announcing_hours_is_refused_in_milliseconds(tmp_path, ffmpeg):
    # 10 minutes of silence in ~220 KB; with a 60 s limit it must be refused from the header.
    silent = tmp_path / "long.opus"
    generate(
        silent, ffmpeg, "anullsrc=r=8000:cl=mono", "-t", "600", "-c:a", "libopus", "-b:a", "6k"
    )
    started = time.monotonic()
    with pytest.raises(AudioTooLongError) as caught:
        _decode(silent, tmp_path, ffmpeg, max_duration_seconds=60)
    assert time.monotonic() - started < 2.0
    assert caught.value.duration_seconds == pytest.approx(600, abs=1)
    assert not (tmp_path / "decoded.f32").exists()


def test_decoding_is_capped_when_the_header_has_no_duration(tmp_path, ffmpeg):
    """Headers can be absent or lie: decoding stops at the limit plus one second."""
    tone = make_tone(tmp_path / "long.flac", ffmpeg, seconds=30)
    no_duration = ProbeResult(
        duration_seconds=None,
        duration_is_estimate=False,
        has_audio=True,
        audio_codec="flac",
        sample_rate=44100,
        channels=2,
    )
    started = time.monotonic()
    with pytest.raises(AudioTooLongError):
        decode_audio(
            tone,
            tmp_path / "capped.f32",
            ffmpeg=ffmpeg,
            sample_rate=44100,
            limits=AudioLimits(max_duration_seconds=5),
            info=no_duration,
        )
    assert time.monotonic() - started < 5.0
    assert (tmp_path / "capped.f32").stat().st_size <= 6.01 * 44100 * 2 * 4


def test_inspect_refuses_long_input_without_decoding(tmp_path, ffmpeg, clip_path):
    with pytest.raises(AudioTooLongError) as caught:
        inspect_audio(clip_path, ffmpeg=ffmpeg, limits=AudioLimits(max_duration_seconds=10))
    assert "0:20" in caught.value.user_message and "0:10" in caught.value.user_message


@pytest.mark.parametrize(
    "error",
    [
        EmptyAudioError(),
        NotAudioError(),
        CorruptAudioError(),
        AudioTooLongError(duration_seconds=3600, limit_seconds=900),
        AudioTooLongError(duration_seconds=None, limit_seconds=900),
        AudioTooLargeError(size_bytes=30 * 2**20, limit_bytes=20 * 2**20),
    ],
)
def test_every_input_error_has_a_one_line_human_message(error: AudioInputError):
    message = error.user_message
    assert message and "\n" not in message and len(message) < 200
    assert message[0].isupper() and message.endswith(".")
    assert error.kind != "bad_input"
