"""A fake LRCLIB (lrclib.net) on 127.0.0.1, for tests of lyrics lookups without the internet.

It answers like LRCLIB's public API (https://lrclib.net/docs) from a catalog of tracks:

- ``GET /api/get?artist_name=&track_name=[&album_name=][&duration=]``: the track whose
  artist and title match (case-insensitively), the album too when given, and whose
  duration is within ±2 s when given; else 404 with LRCLIB's JSON body
  ``{"code": 404, "name": "TrackNotFound", "message": "Failed to find specified track"}``.
  Without artist or title: 400, as LRCLIB validates.
- ``GET /api/search?q=`` or ``?track_name=[&artist_name=][&album_name=]``: a JSON list (at
  most 20) of the tracks containing every word of ``q`` in title, artist or album, or the
  given fields as substrings; ``[]`` when none.
- Anything else: 404.

A track is returned as LRCLIB returns it: ``id, name, trackName, artistName, albumName,
duration, instrumental, plainLyrics, syncedLyrics`` (lyrics ``null`` when absent).

A test can make one endpoint misbehave (:meth:`FakeLrclib.misbehave`): drip a byte at a
time, stall before answering, send a huge body (with or without ``Content-Length``),
malformed JSON, the wrong schema, a gzip body, a redirect, or a 500. Every request is
recorded (path, query, ``User-Agent``) so tests assert what was asked, and that nothing
else was.

Usage::

    async with running_fake_lrclib() as lrclib:
        lrclib.add(Track(artist="Queen", title="Bohemian Rhapsody", duration=354, synced=LRC))
        client = LrclibClient(lrclib.base_url, timeout_seconds=2, max_bytes=100_000)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

GET, SEARCH = "/api/get", "/api/search"
NOT_FOUND_BODY = {"code": 404, "name": "TrackNotFound", "message": "Failed to find specified track"}
_DURATION_MATCH_SECONDS = 2.0
"""LRCLIB's get matches a duration within ±2 s."""
_SEARCH_LIMIT = 20


@dataclass(frozen=True)
class Track:
    """One track of the catalog (``id`` is given by :meth:`FakeLrclib.add`)."""

    artist: str
    title: str
    duration: float
    album: str = "Album"
    synced: str | None = None
    plain: str | None = None
    instrumental: bool = False


@dataclass(frozen=True)
class Recorded:
    """One request the fake received."""

    path: str
    query: dict[str, str]
    user_agent: str


# -- misbehaviours ------------------------------------------------------------------------
@dataclass(frozen=True)
class Drip:
    """200 and headers at once, then ``chunk`` every ``interval_seconds`` for ``total_seconds``
    (a slow loris: each read finishes well within a per-read timeout)."""

    interval_seconds: float = 0.1
    total_seconds: float = 30.0
    chunk: bytes = b" "


@dataclass(frozen=True)
class Stall:
    """Accept the request, answer nothing for ``seconds``."""

    seconds: float = 30.0


@dataclass(frozen=True)
class Huge:
    """200 with a valid record whose plain lyrics make the body ``size`` bytes; sent in
    chunks without ``Content-Length`` unless ``declare_length``."""

    size: int
    declare_length: bool = False


@dataclass(frozen=True)
class Raw:
    """Any status, body and headers (malformed JSON, wrong schema, 500, gzip...)."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


@dataclass(frozen=True)
class Redirect:
    """A 302 to ``location`` (somewhere else)."""

    location: str


Misbehaviour = Drip | Stall | Huge | Raw | Redirect


def record_of(track: Track, track_id: int) -> dict[str, Any]:
    """``track`` as LRCLIB's API returns it."""
    return {
        "id": track_id,
        "name": track.title,
        "trackName": track.title,
        "artistName": track.artist,
        "albumName": track.album,
        "duration": float(track.duration),
        "instrumental": track.instrumental,
        "plainLyrics": track.plain,
        "syncedLyrics": track.synced,
    }


class FakeLrclib:
    """The catalog, the misbehaviours and the requests; start it with
    :func:`running_fake_lrclib`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._tracks: dict[int, Track] = {}
        self._ids = itertools.count(1001)
        self._misbehaviours: dict[str, Misbehaviour] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def paths(self) -> list[str]:
        """The paths asked, in order."""
        return [request.path for request in self.requests]

    # -- test controls ------------------------------------------------------------------
    def add(self, track: Track) -> int:
        """Put ``track`` in the catalog; its LRCLIB id."""
        track_id = next(self._ids)
        self._tracks[track_id] = track
        return track_id

    def misbehave(self, path: str, answer: Misbehaviour) -> None:
        """Answer every request to ``path`` (:data:`GET` or :data:`SEARCH`) with ``answer``."""
        self._misbehaviours[path] = answer

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- answers ------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        self.requests.append(Recorded(request.path, query, request.headers.get("User-Agent", "")))
        misbehaviour = self._misbehaviours.get(request.path)
        if misbehaviour is not None:
            return await _misbehave(request, misbehaviour)
        if request.path == GET:
            return self._get(query)
        if request.path == SEARCH:
            return self._search(query)
        return _error(404, "NotFound", "Not found")

    def _get(self, query: dict[str, str]) -> web.Response:
        if not query.get("artist_name") or not query.get("track_name"):
            return _error(400, "ValidationError", "artist_name and track_name are required")
        for track_id, track in self._tracks.items():
            if _is_asked(track, query):
                return web.json_response(record_of(track, track_id))
        return web.json_response(NOT_FOUND_BODY, status=404)

    def _search(self, query: dict[str, str]) -> web.Response:
        if not query.get("q") and not query.get("track_name"):
            return _error(400, "ValidationError", "q or track_name is required")
        found = [
            record_of(track, track_id)
            for track_id, track in self._tracks.items()
            if _matches(track, query)
        ]
        return web.json_response(found[:_SEARCH_LIMIT])


def _error(status: int, name: str, message: str) -> web.Response:
    return web.json_response({"code": status, "name": name, "message": message}, status=status)


def _is_asked(track: Track, query: dict[str, str]) -> bool:
    """``track`` is what ``/api/get`` asks for (a duration within ±2 s, when given)."""
    album, duration = query.get("album_name"), query.get("duration")
    return (
        _same(track.artist, query["artist_name"])
        and _same(track.title, query["track_name"])
        and (album is None or _same(track.album, album))
        and (duration is None or abs(track.duration - float(duration)) <= _DURATION_MATCH_SECONDS)
    )


def _same(stored: str, asked: str) -> bool:
    return stored.casefold() == asked.strip().casefold()


def _matches(track: Track, query: dict[str, str]) -> bool:
    fields = {"track_name": track.title, "artist_name": track.artist, "album_name": track.album}
    for name, value in fields.items():
        if name in query and query[name].casefold() not in value.casefold():
            return False
    words = " ".join(fields.values()).casefold()
    return all(word in words for word in query.get("q", "").casefold().split())


async def _misbehave(request: web.Request, answer: Misbehaviour) -> web.StreamResponse:
    match answer:
        case Drip():
            return await _drip(request, answer)
        case Stall(seconds=seconds):
            await asyncio.sleep(seconds)
            return web.json_response(NOT_FOUND_BODY, status=404)
        case Huge():
            return await _huge(request, answer)
        case Raw(status=status, body=body, headers=headers):
            return web.Response(status=status, body=body, headers=headers)
        case Redirect(location=location):
            return web.Response(status=302, headers={"Location": location})


async def _drip(request: web.Request, drip: Drip) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    ends = loop.time() + drip.total_seconds
    with contextlib.suppress(ConnectionError):  # the client hung up: what it should do
        while loop.time() < ends:
            await response.write(drip.chunk)
            await asyncio.sleep(drip.interval_seconds)
        await response.write_eof()
    return response


async def _huge(request: web.Request, huge: Huge) -> web.StreamResponse:
    frame = json.dumps(record_of(Track("Artist", "Title", 200, plain=""), 1)).encode()
    filler = huge.size - len(frame)
    body = frame.replace(b'"plainLyrics": ""', b'"plainLyrics": "' + b"la " * (filler // 3) + b'"')
    if huge.declare_length:
        return web.Response(body=body, content_type="application/json")
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    with contextlib.suppress(ConnectionError):  # the client stopped reading past its cap
        for start in range(0, len(body), 64 * 1024):
            await response.write(body[start : start + 64 * 1024])
        await response.write_eof()
    return response


@contextlib.asynccontextmanager
async def running_fake_lrclib() -> AsyncIterator[FakeLrclib]:
    """A started :class:`FakeLrclib`, stopped on exit."""
    fake = FakeLrclib()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
