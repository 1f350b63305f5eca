"""A song's karaoke videos against its separation, in one process (issue 24's figure).

Issue 24 asks, for a 4-minute song on this machine, for the render time of the video
(goal: at most a third of that song's separation time) and its size per platform. A
ratio needs its reference measured in the same run, on the same machine, under the same
load, so this does both in one process, the way the bot does them:

1. a random model of the exact pretrained ``htdemucs`` architecture (weights do not
   change cost) in a temporary ``--repo``, and the real ``SeparationPool``;
2. ``--seconds`` of real music (``lets-go-fishin.ogg`` looped) separated through it
   (decode, forward passes, two MP3s, the stems kept): the reference, wall seconds;
3. the karaoke video rendered from the kept stems through the same pool's ``render``
   (``RenderRequest.video``), with no change, a key change (-2) and tempo 0.9, each at
   Telegram's 50 MB and Discord's 10 MiB (``max_output_bytes``): wall seconds and size.

The words are ``video_benchmark``'s made-up song timed word by word. ``--lyrics lrc``
writes them as enhanced LRC into the song's tags (``LYRICS``), so the pool reads them
when it separates and the video takes ``JobResult.tag_lyrics``, as the bot does;
``--lyrics plain`` sends their untimed lines in the request, so each video aligns them
on the separated vocals first. A random model's vocals are noise: the timing found is
printed, and a refusal is printed as such, never hidden.

    python benchmarks/video_vs_separation.py
    python benchmarks/video_vs_separation.py --lyrics plain
    python benchmarks/video_vs_separation.py --seconds 20 --model tiny
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pool_benchmark import MODEL_KINDS, one_song_pool
from video_benchmark import LIMITS, paper_boats

from separation.audio.render_options import RenderOptions
from separation.errors import LyricsInputError, OutputTooLargeError, VideoRenderError
from separation.jobs import JobResult, RenderRequest, SeparationRequest
from separation.lyrics.lrc import to_lrc
from separation.lyrics.model import LyricsSource
from separation.model.loading import LoadedModel
from separation.pool import PoolConfig, SeparationPool
from separation.video.request import VIDEO, VideoRequest

GOAL = 1 / 3
"""A video's render time against its song's separation time, at most (issue 24)."""
CONTROLS = {
    "no change": RenderOptions(),
    "key -2": RenderOptions(key=-2),
    "tempo 0.9": RenderOptions(tempo=0.9),
}
TITLE, ARTIST = "Paper Boats", "The Made-Up Band"


@dataclass(frozen=True)
class VideoRow:
    """One video: how long it took, and what came of it."""

    control: str
    platform: str
    limit_bytes: int
    seconds: float
    size_bytes: int | None
    """None: no video (``refused`` says why)."""
    timing: str | None
    refused: str | None = None


def write_tag_lyrics(song: Path, lrc: str) -> None:
    """Put ``lrc`` in the FLAC's ``LYRICS`` Vorbis comment, where taggers put LRC."""
    from mutagen.flac import FLAC

    tagged = FLAC(song)
    tagged["LYRICS"] = lrc
    tagged.save()


def video_request(separated: JobResult, mode: str, seconds: float) -> VideoRequest:
    """The words as the bot would send them: the tags' LRC, or the user's plain lines."""
    if mode == "lrc":
        if not separated.tag_lyrics:
            raise SystemExit("the LRC written in the song's tags was not read back by the pool")
        text, source = separated.tag_lyrics, LyricsSource.TAGS
    else:
        text = "\n".join(line.text for line in paper_boats(seconds).lines)
        source = LyricsSource.USER
    return VideoRequest(lyrics_text=text, lyrics_source=source, title=TITLE, artist=ARTIST)


async def render_one(
    pool: SeparationPool, request: RenderRequest, control: str, platform: str
) -> VideoRow:
    """One video through the pool, timed; a refusal or a failure is a row too."""
    limit = request.max_output_bytes or 0
    started = time.perf_counter()
    try:
        result = await pool.render(request)
    except (LyricsInputError, OutputTooLargeError, VideoRenderError) as exc:
        seconds = time.perf_counter() - started
        why = f"{type(exc).__name__}: {getattr(exc, 'user_message', str(exc))}"
        return VideoRow(control, platform, limit, seconds, None, None, why)
    seconds = time.perf_counter() - started
    try:
        if result.cache_hit:
            raise SystemExit(f"{control} for {platform} came from the cache: not a render")
        size = result.outputs[VIDEO].stat().st_size
    finally:
        result.release()
    return VideoRow(control, platform, limit, seconds, size, result.lyrics_timing)


def print_table(separation: float, rows: list[VideoRow]) -> None:
    print(f"\nseparation (decode, model, 2 MP3s, stems kept): {separation:7.1f} s")
    print(
        f"{'video':10s} {'platform':9s} {'wall':>8s} {'/ sep.':>7s} {'size':>9s} "
        f"{'limit':>9s}  {'timing':11s} goal (<= 1/3)"
    )
    for row in rows:
        ratio = row.seconds / separation
        ok = "holds" if ratio <= GOAL else "MISSED"
        if row.size_bytes is None:
            print(
                f"{row.control:10s} {row.platform:9s} {row.seconds:7.1f}s {ratio:7.3f} "
                f"{'-':>9s} {row.limit_bytes / 1e6:7.2f}MB  no video: {row.refused}"
            )
            continue
        print(
            f"{row.control:10s} {row.platform:9s} {row.seconds:7.1f}s {ratio:7.3f} "
            f"{row.size_bytes / 1e6:7.2f}MB {row.limit_bytes / 1e6:7.2f}MB  "
            f"{row.timing or '?':11s} {ok}"
        )
    made = [row.seconds / separation for row in rows if row.size_bytes is not None]
    if not made:
        verdict = "not measured: no video was made"
    else:
        verdict = f"{'holds' if max(made) <= GOAL else 'MISSED'} (worst ratio {max(made):.3f})"
    print(
        f"videos made {len(made)} of {len(rows)}; goal (each <= 1/3 of the separation): {verdict}"
    )


async def measure(
    config: PoolConfig, model: LoadedModel, song: Path, args: argparse.Namespace
) -> None:
    pool = SeparationPool(config, lambda device: model)
    await pool.start()
    try:
        started = time.perf_counter()
        handle = await pool.submit(SeparationRequest(user_ref="bench", input_path=song))
        separated = await handle.result()
        separation = time.perf_counter() - started
        try:
            video = video_request(separated, args.lyrics, args.seconds)
            rows = [
                await render_one(pool, request, control, platform)
                for control, options in CONTROLS.items()
                for platform, limit in LIMITS.items()
                for request in [RenderRequest(separated.cache_key, options, video=video,
                                              max_output_bytes=limit)]
            ]  # fmt: skip
        finally:
            separated.release()
    finally:
        await pool.shutdown(timeout=0)
    print_table(separation, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=240.0, help="the song's length")
    parser.add_argument("--lyrics", choices=["lrc", "plain"], default="lrc")
    parser.add_argument(
        "--model", choices=MODEL_KINDS, default="htdemucs", help="tiny: for smoke tests only"
    )
    args = parser.parse_args()
    if not paper_boats(args.seconds).lines:
        parser.error(f"a song of {args.seconds:g} s has no words: its intro alone is longer")
    with one_song_pool(args.seconds, args.model) as (config, model, song):
        if args.lyrics == "lrc":
            write_tag_lyrics(song, to_lrc(paper_boats(args.seconds)))
        where = "in the song's tags" if args.lyrics == "lrc" else "in the request"
        print(
            f"{args.lyrics} lyrics {where}, "
            f"{torch.get_num_threads()} torch threads; each video renders on one CPU slot"
        )
        asyncio.run(measure(config, model, song, args))


if __name__ == "__main__":
    main()
