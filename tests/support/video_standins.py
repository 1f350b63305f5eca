"""The karaoke video's parts in pool tests: songs with lyrics tags and cover art, and
the tag reader, cover extractor and video maker the pool calls (issue 24).

Where ``separation.lyrics.tags``, ``separation.video.cover`` and
``separation.video.karaoke`` are in the checkout, the real ones run (recorded, so a test
can see what the pool handed them). Where a branch that provides them is not merged
yet, small stand-ins with the same signatures take their place: real ffmpeg runs that
read the same tags, the same attached picture, and write a real MP4 of the sound track,
so the pool's side is tested the same way either way.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from separation.audio.decode import AudioLimits
from separation.audio.ffmpeg import find_ffmpeg
from separation.audio.probe import probe
from separation.errors import LyricsInputError
from separation.lyrics.model import Timing
from separation.video.request import VideoRequest

LRC = "[00:00.50]Hello little\n[00:01.80]world of songs\n"


def tagged_song(
    path: Path, ffmpeg: str, source: Path, *, lyrics: str | None, cover: bool, seconds: float = 3
) -> Path:
    """``seconds`` of ``source`` as FLAC, with ``lyrics`` in its LYRICS tag and a red
    attached picture when ``cover``."""
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-t", str(seconds), "-i", str(source)]
    if cover:
        command += ["-f", "lavfi", "-i", "color=c=red:s=96x96:d=1", "-map", "0:a", "-map", "1"]
        command += ["-c:v", "mjpeg", "-disposition:v", "attached_pic"]
    if lyrics is not None:
        command += ["-metadata", f"LYRICS={lyrics}"]
    subprocess.run([*command, "-y", str(path)], check=True)
    return path


def _module(monkeypatch: pytest.MonkeyPatch, name: str) -> types.ModuleType:
    """The real module ``name``, or an empty one standing in for it in ``sys.modules``
    for this test."""
    try:
        return importlib.import_module(name)
    except ImportError:
        stand_in = types.ModuleType(name)
        monkeypatch.setitem(sys.modules, name, stand_in)
        return stand_in


def _install(
    monkeypatch: pytest.MonkeyPatch, name: str, attribute: str, stand_in: Callable[..., Any]
) -> Callable[..., Any]:
    """The real ``name.attribute`` if it exists, else ``stand_in`` installed there."""
    module = _module(monkeypatch, name)
    real = getattr(module, attribute, None)
    if real is None:
        monkeypatch.setattr(module, attribute, stand_in, raising=False)
        return stand_in
    return real  # type: ignore[no-any-return]


@dataclass
class VideoCalls:
    """What the pool asked of the video maker, one dict of keyword arguments per call."""

    calls: list[dict[str, Any]] = field(default_factory=list)


def _read_lyrics_tags(path: Path) -> str | None:
    """Stands in for ``separation.lyrics.tags.read_lyrics_tags``: the LYRICS tag."""
    tags = probe(path, ffmpeg=find_ffmpeg(), limits=AudioLimits().probe_limits()).tags
    return tags.get("lyrics") or tags.get("unsyncedlyrics")


def _extract_cover(upload: Path, output: Path, *, ffmpeg: str) -> Path | None:
    """Stands in for ``separation.video.cover.extract_cover``: the attached picture."""
    done = subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(upload), "-map", "0:v:0",
         "-frames:v", "1", "-y", str(output)],
        capture_output=True,
    )  # fmt: skip
    return output if done.returncode == 0 and output.exists() else None


def use_song_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tag reader and cover extractor: the real ones, or stand-ins."""
    _install(monkeypatch, "separation.lyrics.tags", "read_lyrics_tags", _read_lyrics_tags)
    _install(monkeypatch, "separation.video.cover", "extract_cover", _extract_cover)


def install_missing_parts() -> None:
    """In a process of its own (a fleet worker, ``tests/support/standin_worker.py``): a
    stand-in module for each of the three parts this checkout lacks, none otherwise."""
    parts = {
        ("separation.lyrics.tags", "read_lyrics_tags"): _read_lyrics_tags,
        ("separation.video.cover", "extract_cover"): _extract_cover,
        ("separation.video.karaoke", "make_karaoke_video"): _stand_in,
    }
    for (name, attribute), stand_in in parts.items():
        try:
            importlib.import_module(name)
        except ImportError:
            module = types.ModuleType(name)
            setattr(module, attribute, stand_in)
            sys.modules[name] = module


def use_video_maker(monkeypatch: pytest.MonkeyPatch) -> VideoCalls:
    """``make_karaoke_video``: the real one or a stand-in, recording every call."""
    recorded = VideoCalls()
    maker = _install(monkeypatch, "separation.video.karaoke", "make_karaoke_video", _stand_in)

    def recording(video: VideoRequest, **arguments: Any) -> Timing:
        recorded.calls.append({"video": video, **arguments})
        return maker(video, **arguments)  # type: ignore[no-any-return]

    monkeypatch.setattr(sys.modules["separation.video.karaoke"], "make_karaoke_video", recording)
    return recorded


def _stand_in(
    video: VideoRequest,
    *,
    instrumental: Path,
    vocals: Path | None,
    tempo: float,
    duration_seconds: float,
    output: Path,
    ffmpeg: str,
    workdir: Path,
    max_bytes: int | None,
    threads: int = 1,
    cover: Path | None = None,
) -> Timing:
    """The sound track under a still picture (the cover, or a colour), as H.264 + AAC."""
    timed = re.search(r"\[\d+:\d\d", video.lyrics_text) is not None
    if not timed and not video.align:
        raise LyricsInputError("These lyrics have no times; send an .lrc file.")
    picture = ["-loop", "1", "-i", str(cover)] if cover else ["-f", "lavfi", "-i", "color=c=navy"]
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", *picture, "-i", str(instrumental),
         "-map", "0:v", "-map", "1:a", "-vf", "scale=160:90,fps=5,format=yuv420p",
         "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-threads", str(threads),
         "-t", f"{duration_seconds:.3f}", "-y", str(output)],
        check=True,
    )  # fmt: skip
    return Timing.LINE if timed else Timing.APPROXIMATE
