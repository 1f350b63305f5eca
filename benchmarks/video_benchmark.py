"""Karaoke video render time and size for a song of ``--seconds`` (issue 24).

The instrumental is real music from ../shared/data (``lets-go-fishin.ogg`` looped to
the length); the words are a made-up song, "Paper Boats", timed word by word, with a
long intro and an instrumental break (so countdowns and the title card are drawn). The
video is rendered at Telegram's and Discord's upload limits, with the colour background
and with cover art (the one in ``vibe-ace.ogg``), on ``--threads`` cores. Prints the
render time, the size and the bitrates chosen; never a timed test.

``--still PATH`` also writes a PNG frame of a video, for the docs
(``docs/pages/img/karaoke-video.png``).

    python benchmarks/video_benchmark.py
    python benchmarks/video_benchmark.py --seconds 300 --threads 2
    python benchmarks/video_benchmark.py --seconds 20 --still docs/pages/img/karaoke-video.png
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from separation.audio.ffmpeg import find_ffmpeg
from separation.lyrics.model import LyricLine, Lyrics, LyricsSource, LyricWord, Timing
from separation.video.ass import write_karaoke_ass
from separation.video.cover import extract_cover
from separation.video.fonts import prepare_fonts
from separation.video.render import RenderedVideo, render_video
from separation.video.request import VideoLook

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LIMITS = {"telegram": 50_000_000, "discord": 10 * 2**20}
PAPER_BOATS = (
    "We fold the morning into paper boats",
    "and send them sailing down the rainy street",
    "the gutters hum a song that no one wrote",
    "and every puddle keeps a steady beat",
    "Row, row, the river knows our names",
    "row, row, it carries us the same",
    "from the corner shop to the harbour lights",
    "paper boats are sailing through the night",
)
INTRO_SECONDS = 10.0
LINE_SECONDS = 3.2
BREAK_EVERY = 8
BREAK_SECONDS = 12.0


def paper_boats(seconds: float) -> Lyrics:
    """The made-up song's words, timed word by word until ``seconds`` (a break after
    every eight lines)."""
    lines: list[LyricLine] = []
    start = INTRO_SECONDS
    while start + LINE_SECONDS < seconds:
        text = PAPER_BOATS[len(lines) % len(PAPER_BOATS)]
        pieces = text.split(" ")
        step = (LINE_SECONDS - 0.4) / len(pieces)
        words = tuple(
            LyricWord(piece + ("" if n == len(pieces) - 1 else " "), start + n * step,
                      start + (n + 0.8) * step)
            for n, piece in enumerate(pieces)
        )  # fmt: skip
        lines.append(LyricLine(text, start, words[-1].end, words))
        start += LINE_SECONDS + (BREAK_SECONDS if len(lines) % BREAK_EVERY == 0 else 0.0)
    return Lyrics(tuple(lines), Timing.WORD, LyricsSource.USER)


def looped_song(ffmpeg: str, seconds: float, folder: Path) -> Path:
    song = folder / "instrumental.wav"
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-stream_loop", "-1",
         "-i", str(SHARED_DATA / "lets-go-fishin.ogg"), "-t", f"{seconds}", "-y", str(song)],
        check=True,
    )  # fmt: skip
    return song


def render(
    ffmpeg: str, song: Path, seconds: float, folder: Path, *,
    max_bytes: int | None, threads: int, cover: Path | None,
) -> RenderedVideo:  # fmt: skip
    look = VideoLook()
    fonts = prepare_fonts(folder)
    ass = folder / "karaoke.ass"
    write_karaoke_ass(
        paper_boats(seconds), ass, look=look, title="Paper Boats", artist="The Made-Up Band",
        duration_seconds=seconds, font_family=fonts.family,
    )  # fmt: skip
    return render_video(
        ass=ass, fonts=fonts, instrumental=song, output=folder / "karaoke.mp4", look=look,
        duration_seconds=seconds, ffmpeg=ffmpeg, max_bytes=max_bytes, threads=threads,
        cover=cover,
    )  # fmt: skip


def write_still(ffmpeg: str, video: Path, at_seconds: float, still: Path) -> None:
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-ss", f"{at_seconds}", "-i", str(video),
         "-frames:v", "1", "-vf", "scale=640:-2", "-y", str(still)],
        check=True,
    )  # fmt: skip
    print(f"still: {still} ({still.stat().st_size / 1000:.0f} KB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--still", type=Path, help="also write a PNG frame here")
    args = parser.parse_args()
    ffmpeg = find_ffmpeg()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        song = looped_song(ffmpeg, args.seconds, folder)
        cover = extract_cover(SHARED_DATA / "vibe-ace.ogg", folder / "cover.jpg", ffmpeg=ffmpeg)
        print(f"{args.seconds:.0f} s song, {args.threads} thread(s), 854x480 at 15 fps")
        print(
            f"{'chat':9s} {'background':10s} {'wall':>7s} {'cpu':>7s} {'size':>9s}  "
            "audio kb/s, video ceiling and used kb/s"
        )
        for chat, limit in LIMITS.items():
            for background, picture in (("colour", None), ("cover", cover)):
                run = folder / f"{chat}-{background}"
                run.mkdir()
                video = render(
                    ffmpeg, song, args.seconds, run,
                    max_bytes=limit, threads=args.threads, cover=picture,
                )  # fmt: skip
                used = video.size_bytes * 8 / 1000 / args.seconds - video.bitrates.audio_kbps
                print(
                    f"{chat:9s} {background:10s} {video.wall_seconds:6.1f}s "
                    f"{video.cpu_seconds:6.1f}s {video.size_bytes / 1e6:7.2f}MB  "
                    f"{video.bitrates.audio_kbps}, {video.bitrates.video_kbps}, {used:.0f}"
                )
                if args.still and chat == "telegram" and background == "cover":
                    write_still(ffmpeg, video.path, INTRO_SECONDS + 4.6, args.still)


if __name__ == "__main__":
    main()
