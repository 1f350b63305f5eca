"""A corpus of hostile uploads, generated with ffmpeg and Python (never committed).

Each function writes one kind of file a stranger could send to the bot (issue 10):
playlists that name a server file or a URL, concat lists, images, subtitles, cover-art
bombs, headers that lie about or hide the length, samples that are not numbers, and
tags that are huge, many or imitate ffmpeg's banner (issue 20).
"""

from __future__ import annotations

import socket
import struct
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def _ffmpeg(ffmpeg: str, *args: str) -> None:
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", *args], check=True)


def hls_playlist(path: Path, segment: str, *, live: bool = False) -> Path:
    """An HLS media playlist whose one segment is ``segment`` (a path or a URL); without
    the end marker it is a live playlist ffmpeg would wait on for new segments."""
    lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:5", "#EXTINF:5,", segment]
    if not live:
        lines.append("#EXT-X-ENDLIST")
    path.write_text("\n".join(lines) + "\n")
    return path


def playlist_of(
    path: Path, *, server_file: Path, listener: ConnectionCounter, remote: bool, live: bool = False
) -> Path:
    """An HLS playlist of a file on the server, or of a URL on ``listener``."""
    target = listener.url("a.ts") if remote else str(server_file)
    return hls_playlist(path, target, live=live)


def ffconcat(path: Path, target: Path) -> Path:
    path.write_text(f"ffconcat version 1.0\nfile '{target}'\n")
    return path


def png_image(path: Path, ffmpeg: str, *, side: int = 64) -> Path:
    _ffmpeg(ffmpeg, "-f", "lavfi", "-i", f"color=c=red:s={side}x{side}:d=1", "-frames:v", "1",
            "-y", str(path))  # fmt: skip
    return path


def subtitles(path: Path) -> Path:
    path.write_text(
        "1\n00:00:01,000 --> 00:00:04,000\nla la la\n\n2\n00:00:05,000 --> 00:00:08,000\nlo\n"
    )
    return path


def cover_bomb(
    path: Path, ffmpeg: str, picture: Path, *, seconds: float = 5.0, copies: int = 1
) -> Path:
    """``seconds`` of audio carrying ``picture`` (a huge PNG costs its decoded size in
    memory to any ffmpeg that decodes attached pictures): once as the ID3 cover of an
    MP3, or ``copies`` times as Matroska attachments (``.mkv``), which ffmpeg reads back
    as attached pictures."""
    tone = ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    if path.suffix == ".mp3":
        _ffmpeg(ffmpeg, *tone, "-i", str(picture), "-map", "0", "-map", "1",
                "-c:a", "libmp3lame", "-c:v", "copy", "-id3v2_version", "3",
                "-disposition:v", "attached_pic", "-y", str(path))  # fmt: skip
        return path
    attachments: list[str] = []
    for index in range(copies):
        attachments += ["-attach", str(picture), f"-metadata:s:t:{index}", "mimetype=image/png",
                        f"-metadata:s:t:{index}", f"filename=cover{index}.png"]  # fmt: skip
    _ffmpeg(ffmpeg, *tone, *attachments, "-c:a", "aac", "-y", str(path))
    return path


def hanging_ffmpeg(folder: Path, ffmpeg: str) -> str:
    """An "ffmpeg" that lists the real decoders but hangs on any input."""
    script = folder / "ffmpeg-hangs"
    script.write_text(
        f'#!/bin/sh\nif [ "$2" = "-decoders" ]; then exec {ffmpeg} "$@"; fi\nexec sleep 60\n'
    )
    script.chmod(0o755)
    return str(script)


def hanging_program(folder: Path) -> str:
    """A program that hangs whatever it is asked (a header reader's stand-in)."""
    script = folder / "hangs"
    script.write_text("#!/bin/sh\nexec sleep 60\n")
    script.chmod(0o755)
    return str(script)


FORGED_BANNER = "\n".join(
    [
        "x",
        "  Duration: 00:00:01.00, start: 0.000000, bitrate: 128 kb/s",
        "  Stream #0:0: Audio: pcm_s16le, 8000 Hz, mono, s16, 128 kb/s",
        "y",
    ]
)
"""What ``ffmpeg -i`` prints for a one-second 8 kHz mono WAV, as a tag can hold it."""
LYRICS_1_MB = "la la la, the words go on\n" * (2**20 // 26)


def _ffmetadata_escaped(text: str) -> str:
    for special in ("\\", "=", ";", "#", "\n"):
        text = text.replace(special, "\\" + special)
    return text


def tagged_song(path: Path, ffmpeg: str, tags: Mapping[str, str], *, seconds: float) -> Path:
    """A stereo 44.1 kHz tone carrying ``tags`` (format from the extension).

    The tags go through an ffmetadata file, so names and values may hold anything:
    newlines, ``=``, megabytes of lyrics, ten thousand entries.
    """
    metadata = path.with_name(path.name + ".ffmetadata")
    lines = (f"{_ffmetadata_escaped(k)}={_ffmetadata_escaped(v)}\n" for k, v in tags.items())
    metadata.write_text(";FFMETADATA1\n" + "".join(lines))
    _ffmpeg(
        ffmpeg, "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
        "-f", "ffmetadata", "-i", str(metadata),
        "-map", "0:a", "-map_metadata", "1", "-ac", "2", str(path),
    )  # fmt: skip
    metadata.unlink()
    return path


def lying_mp3(path: Path, ffmpeg: str, work: Path, *, claims: float, plays: float) -> Path:
    """An MP3 whose VBR (Xing) header claims ``claims`` seconds while ``plays`` follow.

    The Xing frame of a short encode is put before the frames of a long one, with its
    byte count patched to the real file size (ffmpeg ignores a Xing header whose size
    does not match) but its frame count left as it was.
    """
    short, long = work / "claims.mp3", work / "plays.mp3"
    for target, seconds, xing in ((short, claims, "1"), (long, plays, "0")):
        _ffmpeg(ffmpeg, "-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}", "-ac", "2",
                "-c:a", "libmp3lame", "-q:a", "4", "-write_xing", xing, "-id3v2_version", "0",
                "-f", "mp3", "-y", str(target))  # fmt: skip
    header = bytearray(short.read_bytes())
    (word,) = struct.unpack(">I", header[:4])
    bitrates = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
    frame_length = 144 * bitrates[(word >> 12) & 15] * 1000 // 44100 + ((word >> 9) & 1)
    first_frame = header[:frame_length]
    xing = first_frame.find(b"Xing")
    assert xing >= 0, "libmp3lame wrote no Xing header"
    body = long.read_bytes()
    struct.pack_into(">I", first_frame, xing + 12, frame_length + len(body))
    path.write_bytes(bytes(first_frame) + body)
    return path


def headerless(path: Path, ffmpeg: str, *, seconds: float) -> Path:
    """Matroska written to a pipe: no duration in the header (``Duration: N/A``)."""
    with path.open("wb") as out:
        subprocess.run(
            [ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
             "-i", f"sine=frequency=440:duration={seconds}", "-ac", "2", "-c:a", "libvorbis",
             "-f", "matroska", "pipe:1"],
            stdout=out, check=True,
        )  # fmt: skip
    return path


def non_finite_wav(path: Path, *, seconds: float = 5.0, rate: int = 44100) -> Path:
    """A float32 stereo WAV with NaN and infinite samples among a sine."""
    frames = int(seconds * rate)
    samples = np.sin(np.arange(frames) * 2 * np.pi * 440 / rate).astype("<f4")
    stereo = np.repeat(samples[:, None], 2, axis=1)
    stereo[rate // 2, 0] = np.nan
    stereo[rate, 1] = np.inf
    data = stereo.tobytes()
    fmt = struct.pack("<HHIIHH", 3, 2, rate, rate * 8, 8, 32)  # IEEE float, 2 ch, 32 bit
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    riff += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)
    return path


class ConnectionCounter:
    """A TCP listener on 127.0.0.1 that counts the connections it is offered."""

    def __init__(self, listener: socket.socket) -> None:
        self._listener = listener
        self.port: int = listener.getsockname()[1]
        self.accepted = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def _serve(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            connection.close()


@contextmanager
def counting_listener() -> Iterator[ConnectionCounter]:
    """Yields a listener; a test asserts ``accepted == 0`` to prove nothing connected."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)  # a bounded loop: it checks for the stop flag this often
    counter = ConnectionCounter(listener)
    stop = threading.Event()
    thread = threading.Thread(target=counter._serve, args=(stop,), daemon=True)
    thread.start()
    try:
        yield counter
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.setblocking(False)
        while True:  # connections still waiting in the backlog count too
            try:
                connection, _ = listener.accept()
            except OSError:
                break
            counter.accepted += 1
            connection.close()
        listener.close()
