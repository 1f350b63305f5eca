"""A link to a site's page (a video, a track), fetched with yt-dlp in a sandboxed child.

yt-dlp runs in a child Python (``bot.links.site_child``) under the sandbox's limits
(``separation.audio.sandbox.run_sandboxed``: address space, CPU time, the largest file it
may write, and a wall-clock deadline after which it is killed), never in the bot's own
process: extractors are large, site-specific parsers of a stranger's pages.

Two phases, so that nothing is downloaded for a link that would be refused:

1. metadata (``metadata_timeout_seconds``): the item's details, no media. A playlist is
   refused (yt-dlp's ``noplaylist`` already takes the one item a URL names, such as a
   video in a playlist; what is still a playlist names no single item), and so are a live
   stream, a length over the caller's limit, an advertised size over the cap, and an
   item that only comes as a manifest (HLS, DASH) rather than a plain file;
2. download (``download_timeout_seconds``), from the saved details.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.links.errors import LinkError, LinkErrorKind
from bot.links.site_child import MEDIA_STEM
from separation.audio.sandbox import ChildLimits, run_sandboxed
from separation.errors import InputLimitError

_CHILD = Path(__file__).with_name("site_child.py")
_CHILD_MEMORY_BYTES = 256 * 2**20
"""Address space of yt-dlp's child (it starts in about 60 MiB). yt-dlp reads a whole page
into memory, however long: this limit is what stops a page that never ends (about 200 MB
are read before it runs out), while real pages of a few MiB fit many times over."""
_CHILD_ENV = {"YTDLP_NO_PLUGINS": "1"}
"""yt-dlp loads no plugin from the user's folders or the path: only its own extractors."""
_REPORT_BYTES = 16 * 1024
_LIVE = frozenset({"is_live", "is_upcoming", "post_live"})
_UNSUPPORTED = ("No suitable extractor", "Unsupported URL")
_TOO_BIG = ("max-filesize", "File too large", "MemoryError")
"""yt-dlp's refusal of an advertised size; the file size limit (RLIMIT_FSIZE: Python
ignores SIGXFSZ, so the write fails instead); the memory limit, hit by a page that does
not end."""


@dataclass(frozen=True)
class SiteItem:
    """A site's item by its metadata, checked, nothing downloaded yet:
    ``(extractor, item_id)`` is the cache-by-source key."""

    extractor: str
    item_id: str
    title: str | None
    artist: str | None
    duration: float | None


@dataclass(frozen=True)
class SiteMedia:
    """A site's item on disk, and who it is."""

    path: Path
    extractor: str
    item_id: str
    title: str | None
    artist: str | None
    duration: float | None


@dataclass(frozen=True)
class SiteRequest:
    """One link for yt-dlp, with its limits."""

    url: str
    site: str
    """The link's host, for the user's sentence."""
    dest: Path
    """The caller's private folder: yt-dlp writes only there."""
    proxy_url: str | None
    extractors: tuple[str, ...]
    max_bytes: int
    max_duration_seconds: float
    metadata_timeout_seconds: float
    download_timeout_seconds: float


async def fetch_site(request: SiteRequest, *, python: str = sys.executable) -> SiteMedia:
    """The item ``request.url`` names, checked by its metadata, then downloaded.

    Raises:
        LinkError: as :func:`read_item` and :func:`download_item`.
    """
    item = await read_item(request, python=python)
    return await download_item(request, item, python=python)


async def read_item(request: SiteRequest, *, python: str = sys.executable) -> SiteItem:
    """The item's metadata, checked; its details are saved in ``request.dest`` for
    :func:`download_item`. No media is fetched.

    Raises:
        LinkError: ``unsupported_site``, ``playlist``, ``live``, ``too_long``,
            ``too_big``, ``not_audio`` (no plain media file), ``timeout``, ``unreachable``.
    """
    found = await _run(request, "metadata", request.metadata_timeout_seconds, python)
    _check_metadata(found, request)
    return SiteItem(
        extractor=str(found["extractor"]).lower(),
        item_id=str(found["id"]),
        title=_text(found.get("title")),
        artist=_text(found.get("artist")),
        duration=_number(found.get("duration")),
    )


async def download_item(
    request: SiteRequest, item: SiteItem, *, python: str = sys.executable
) -> SiteMedia:
    """Download the item :func:`read_item` checked (from its saved details, never
    extracting the page again).

    Raises:
        LinkError: ``too_big``, ``timeout``, ``unreachable``, ``not_audio``.
    """
    try:
        downloaded = await _run(request, "download", request.download_timeout_seconds, python)
        path = Path(str(downloaded["path"]))
        await asyncio.to_thread(_check_file, path, request)
    except LinkError:
        await asyncio.to_thread(_remove_media, request.dest)
        raise
    return SiteMedia(
        path=path,
        extractor=item.extractor,
        item_id=item.item_id,
        title=item.title,
        artist=item.artist,
        duration=item.duration,
    )


def _remove_media(dest: Path) -> None:
    """What a stopped download left (a ``.part`` file up to the cap), not the details."""
    for path in dest.glob(f"{MEDIA_STEM}.*"):
        path.unlink(missing_ok=True)


def _check_file(path: Path, request: SiteRequest) -> None:
    """The child's file is in the private folder and under the cap."""
    if not path.is_file() or not path.resolve().is_relative_to(request.dest.resolve()):
        raise LinkError("unreachable", site=request.site, detail="no file from yt-dlp")
    if path.stat().st_size > request.max_bytes:
        raise LinkError("too_big", site=request.site, detail="downloaded past the cap")


def _check_metadata(found: dict[str, Any], request: SiteRequest) -> None:
    """Refuse, before any media is fetched, what the details already rule out."""
    site = request.site
    if found.get("type") != "video":
        raise LinkError(
            "playlist", site=site, detail=f"{found.get('type')} of {found.get('entries')}"
        )
    if found.get("is_live") or found.get("live_status") in _LIVE:
        raise LinkError("live", site=site, detail=str(found.get("live_status")))
    duration = _number(found.get("duration"))
    if duration is not None and duration > request.max_duration_seconds:
        raise LinkError("too_long", site=site, detail=f"{duration:.0f} s by its metadata")
    size = _number(found.get("filesize"))
    if size is not None and size > request.max_bytes:
        raise LinkError("too_big", site=site, detail=f"{size:.0f} bytes by its metadata")
    if str(found.get("protocol")) not in ("http", "https"):
        raise LinkError("not_audio", site=site, detail=f"only as {found.get('protocol')}")
    if not found.get("extractor") or not found.get("id"):
        raise LinkError("unreachable", site=site, detail="no extractor or id in the details")


async def _run(
    request: SiteRequest, phase: str, wall_seconds: float, python: str
) -> dict[str, Any]:
    """Run one phase in the sandboxed child; its report, or the refusal it amounts to."""
    payload = {
        "url": request.url,
        "dest": str(request.dest),
        "proxy": request.proxy_url,
        "extractors": [re.escape(name) for name in request.extractors],
        "max_bytes": request.max_bytes,
        "socket_timeout": min(wall_seconds, 30.0),
    }
    limits = ChildLimits(
        wall_seconds=wall_seconds,
        memory_bytes=_CHILD_MEMORY_BYTES,
        file_bytes=request.max_bytes + 2**20,
    )
    # -I: no PYTHON* variables, no user site-packages, not the working folder on the path.
    arguments = [python, "-I", str(_CHILD), phase, json.dumps(payload)]
    try:
        run = await asyncio.to_thread(
            run_sandboxed, arguments, limits, what=f"yt-dlp {phase}", environment=_CHILD_ENV
        )
    except InputLimitError as error:
        kind: LinkErrorKind = "too_big" if "file size" in str(error.detail) else "timeout"
        raise LinkError(kind, site=request.site, detail=str(error.detail)) from None
    report = _report(run.stdout, request.site)
    if report.get("outcome") != "ok":
        raise _refusal(report, request.site)
    return report


def _report(stdout: str, site: str) -> dict[str, Any]:
    lines = stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1][:_REPORT_BYTES]) if lines else None
    except json.JSONDecodeError:
        report = None
    if not isinstance(report, dict):
        raise LinkError("unreachable", site=site, detail="yt-dlp's child gave no report")
    return report


def _refusal(report: dict[str, Any], site: str) -> LinkError:
    """What yt-dlp's messages amount to, as one refusal."""
    messages = " | ".join(str(message) for message in report.get("messages", []))
    if any(marker in messages for marker in _UNSUPPORTED):
        return LinkError("unsupported_site", site=site, detail=messages[:300])
    if any(marker in messages for marker in _TOO_BIG):
        return LinkError("too_big", site=site, detail=messages[:300])
    if "Requested format is not available" in messages:
        return LinkError("not_audio", site=site, detail=messages[:300])
    return LinkError("unreachable", site=site, detail=messages[:300])


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: object) -> str | None:
    return value[:200] if isinstance(value, str) and value else None
