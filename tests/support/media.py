"""Media for tests: real music from ../shared/data, ffmpeg-made tones, excerpts and
videos, and outputs decoded back the way the bot decodes its inputs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np

from separation.audio.decode import AudioLimits, DecodedAudio, decode_audio

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
TEST_CLIP = SHARED_DATA / "demucs-test-clip.mp3"  # 20 s MP3, pop/rock with vocals
FISHIN = SHARED_DATA / "lets-go-fishin.ogg"  # 2:13 Ogg Vorbis with tags
VIBE_ACE = SHARED_DATA / "vibe-ace.ogg"  # 1:01 Ogg Vorbis + embedded cover art


def generate(path: Path, ffmpeg: str, source: str, *args: str) -> Path:
    """Write ``path`` from one of ffmpeg's synthetic ``lavfi`` sources (sine, silence...)."""
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", source, *args,
         "-y", str(path)],
        check=True,
    )  # fmt: skip
    return path


def make_tone(
    path: Path, ffmpeg: str, *, seconds: float, channels: int = 2, rate: int = 44100
) -> Path:
    """A 440 Hz tone (format from the file extension)."""
    return generate(
        path,
        ffmpeg,
        f"sine=frequency=440:sample_rate={rate}:duration={seconds}",
        "-ac",
        str(channels),
    )


def excerpt(source: Path, target: Path, ffmpeg: str, seconds: float, *args: str) -> Path:
    """The first ``seconds`` of ``source``'s audio, converted with ffmpeg ``args``."""
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(source), "-t", str(seconds),
         "-map", "0:a:0", *args, "-y", str(target)],
        check=True,
    )  # fmt: skip
    return target


def make_video(target: Path, ffmpeg: str, audio_source: Path, seconds: float) -> Path:
    """An H.264 + AAC video whose sound is the first ``seconds`` of ``audio_source``."""
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
         "-i", f"color=c=blue:s=64x64:d={seconds}", "-i", str(audio_source), "-t", str(seconds),
         "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-c:a", "aac", "-shortest",
         "-y", str(target)],
        check=True,
    )  # fmt: skip
    return target


def decode_file(path: Path, ffmpeg: str, workdir: Path) -> DecodedAudio:
    """Decode a file (an output, usually) the way the bot decodes its inputs."""
    return decode_audio(
        path, workdir / f"{path.name}.f32", ffmpeg=ffmpeg, sample_rate=44100, limits=AudioLimits()
    )


def decode_bytes(content: bytes, name: str, ffmpeg: str, workdir: Path) -> DecodedAudio:
    """Decode uploaded bytes (what a fake chat server received) saved as ``name``."""
    path = workdir / name
    path.write_bytes(content)
    return decode_file(path, ffmpeg, workdir)


def short_excerpt(audio: DecodedAudio, tmp_path: Path, seconds: float) -> DecodedAudio:
    """The first ``seconds`` of a decoded song, as its own DecodedAudio (for fast tests)."""
    frames = int(seconds * audio.sample_rate)
    samples = audio.read(0, frames)
    raw = tmp_path / f"excerpt-{seconds}.f32"
    np.ascontiguousarray(samples.T, dtype="<f4").tofile(raw)
    mono = samples.astype(np.float64).mean(axis=0)
    return DecodedAudio(
        raw_path=raw,
        sample_rate=audio.sample_rate,
        file_channels=2,
        frames=frames,
        mean=float(mono.mean()),
        std=float(mono.std(ddof=1)),
        tags=dict(audio.tags),
    )


def make_telegram_songs(folder: Path, clip_path: Path, ffmpeg: str) -> dict[str, Path]:
    """Short real-music files, by name, in the forms chat users send (audio, voice note,
    video), and files that only look like songs (lyrics, a cut MP3, a PDF)."""
    songs = {
        "clip.mp3": excerpt(clip_path, folder / "clip.mp3", ffmpeg, 6, "-c:a", "libmp3lame"),
        "voice.oga": excerpt(
            clip_path,
            folder / "voice.oga",
            ffmpeg,
            5,
            "-ac",
            "1",
            "-c:a",
            "libopus",
            "-b:a",
            "32k",
            "-f",
            "ogg",
        ),
        "long.mp3": excerpt(clip_path, folder / "long.mp3", ffmpeg, 20, "-c:a", "libmp3lame"),
    }
    video = make_video(folder / "clip.mp4", ffmpeg, clip_path, 5)
    songs["clip.mp4"] = video
    notes = folder / "notes.mp3"
    notes.write_text("these are my lyrics, not a song\n" * 50)
    songs["notes.mp3"] = notes
    truncated = folder / "cut.mp3"
    truncated.write_bytes(clip_path.read_bytes()[:250_000])
    songs["cut.mp3"] = truncated
    pdf = folder / "paper.pdf"
    pdf.write_bytes(b"%PDF-1.4\n" + b"0" * 1000)
    songs["paper.pdf"] = pdf
    return songs


def media_facts(path: Path, ffmpeg: str) -> tuple[float, str]:
    """A media file's duration (from its header) and the ``Stream #...`` lines ffmpeg
    prints for it (``Video: h264 ...``, ``Audio: aac ...``)."""
    command = [ffmpeg, "-hide_banner", "-i", str(path)]  # no output: it only describes
    shown = subprocess.run(command, capture_output=True, text=True, check=False)
    found = re.search(r"Duration: (\d+):(\d+):([\d.]+)", shown.stderr)
    assert found is not None, shown.stderr
    hours, minutes, seconds = found.groups()
    streams = "\n".join(line for line in shown.stderr.splitlines() if "Stream #" in line)
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds), streams
