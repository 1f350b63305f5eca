"""LRCLIB (lrclib.net), the free synced-lyrics service music players use: a song's words
found by its artist, title, album and duration.

Two requests at most, as LRCLIB's API documents them: ``GET /api/get`` (LRCLIB matches
artist and title, the album if given, and the duration within ±2 s), then, when that
misses, ``GET /api/search`` by title and artist, from whose results we pick the best
ourselves: a duration within :data:`DURATION_TOLERANCE_SECONDS` of the song's, synced
lyrics before plain ones, then the closest duration, then LRCLIB's own order.

The answer comes from a server on the internet, so it is read like an upload:

- one time limit for the whole lookup (both requests, connecting and reading), so a
  server that drips a byte a second is cut at the limit, not reset on every byte;
- the body is streamed and counted, and refused past ``max_bytes`` (a declared
  ``Content-Length`` over it is refused before reading); compressed bodies are not asked
  for, and refused if sent anyway (a gzip bomb is small on the wire);
- redirects are never followed and URLs are built only from the configured base URL,
  with artist, title and album as query values (``/``, ``?``, ``#`` or ``..`` in a title
  stay in the title); the environment's proxy settings are ignored;
- the JSON is checked against the documented schema, strictly (``instrumental: "yes"``
  is not a boolean).

Decision on a wrong answer: a 200 whose body is not JSON or not the schema is a broken
service, not a missing song, so it raises :class:`~separation.errors.LyricsServiceError`
(``kind="malformed"``) like a 500 does; the caller logs it and asks the user, exactly as
for "not found", but the log tells the operator the service misbehaves. A well-formed
record that has no words and is not marked instrumental counts as not found.

The text returned is LRCLIB's raw text, bounded by ``max_bytes``: the caller cleans and
parses it (``separation.lyrics.parse``) like any other hostile lyrics.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from separation.errors import LyricsServiceError

logger = logging.getLogger(__name__)

USER_AGENT = "karaoke-bot (a karaoke chat bot; lyrics for its karaoke videos)"
"""LRCLIB asks every client to name itself in ``User-Agent``."""
DURATION_TOLERANCE_SECONDS = 3.0
"""How far a search result's duration may be from the song's. LRCLIB's own get matches
±2 s; a second more allows for its whole-second durations and for encoder padding."""
_GET, _SEARCH = "api/get", "api/search"
_T = TypeVar("_T")


@dataclass(frozen=True)
class LrclibLyrics:
    """What LRCLIB knows of a song's words."""

    text: str
    """LRC when ``synced``, else plain text; empty for an instrumental. Raw: not cleaned."""
    synced: bool
    instrumental: bool
    """LRCLIB says the song has no words (a video shows none, and nobody is asked)."""


class _Record(BaseModel):
    """One track as LRCLIB's API returns it (extra fields ignored, types strict)."""

    model_config = ConfigDict(strict=True, frozen=True, allow_inf_nan=False)

    id: int
    track_name: str = Field(alias="trackName")
    artist_name: str = Field(alias="artistName")
    album_name: str | None = Field(default=None, alias="albumName")
    duration: float | None = None
    instrumental: bool = False
    plain_lyrics: str | None = Field(default=None, alias="plainLyrics")
    synced_lyrics: str | None = Field(default=None, alias="syncedLyrics")

    @property
    def synced(self) -> bool:
        return bool(self.synced_lyrics and self.synced_lyrics.strip())

    @property
    def has_words(self) -> bool:
        return self.synced or bool(self.plain_lyrics and self.plain_lyrics.strip())


_ONE = TypeAdapter(_Record)
_MANY = TypeAdapter(list[_Record])


@dataclass(frozen=True)
class _Song:
    """What we ask about, trimmed and checked once."""

    artist: str
    title: str
    album: str | None
    duration: float | None

    def get_params(self) -> dict[str, str]:
        params = {"artist_name": self.artist, "track_name": self.title}
        if self.album:
            params["album_name"] = self.album
        if self.duration is not None:
            # LRCLIB documents the duration in seconds; a whole number matches its data.
            params["duration"] = str(round(self.duration))
        return params

    def search_params(self) -> dict[str, str]:
        return {"artist_name": self.artist, "track_name": self.title}

    def fits(self, record: _Record) -> bool:
        """``record`` is usable for this song: words (or instrumental), right duration."""
        if not (record.has_words or record.instrumental):
            return False
        return self.distance(record) <= DURATION_TOLERANCE_SECONDS

    def distance(self, record: _Record) -> float:
        if self.duration is None or record.duration is None:
            return 0.0
        return abs(record.duration - self.duration)


class LrclibClient:
    """Finds a song's words on an LRCLIB server at ``base_url`` (and nowhere else).

    Args:
        base_url: the server, e.g. ``https://lrclib.net`` (a path prefix is kept).
        timeout_seconds: the limit for one whole :meth:`find`, every request included.
        max_bytes: the largest answer read; a bigger one raises ``too_large``.
        user_agent: how the client names itself to the server.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float,
        max_bytes: int,
        user_agent: str = USER_AGENT,
    ) -> None:
        if timeout_seconds <= 0 or max_bytes <= 0:
            raise ValueError("timeout_seconds and max_bytes must be positive")
        self._base = _base_url(base_url)
        self._timeout_seconds = timeout_seconds
        self._max_bytes = max_bytes
        self._user_agent = user_agent

    async def find(
        self, *, artist: str, title: str, album: str | None, duration_seconds: float | None
    ) -> LrclibLyrics | None:
        """The words of a song, or None when LRCLIB has none (or artist or title is blank).

        Raises:
            LyricsServiceError: the service failed (see its ``kind``).
        """
        song = _song(artist, title, album, duration_seconds)
        if song is None:
            return None
        try:
            async with asyncio.timeout(self._timeout_seconds), self._http() as http:
                record, endpoint = await self._get(http, song), _GET
                if record is None:
                    record, endpoint = await self._search(http, song), _SEARCH
        except TimeoutError as error:
            failure = LyricsServiceError("timeout", f"no answer in {self._timeout_seconds} s")
            raise _logged(failure) from error
        except httpx.TimeoutException as error:
            raise _logged(LyricsServiceError("timeout", type(error).__name__)) from error
        except httpx.HTTPError as error:
            raise _logged(LyricsServiceError("unreachable", repr(error))) from error
        except LyricsServiceError as error:
            _logged(error)
            raise
        return _lyrics(record, endpoint)

    def _http(self) -> httpx.AsyncClient:
        limit = httpx.Timeout(self._timeout_seconds)
        return httpx.AsyncClient(
            timeout=limit,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": self._user_agent, "Accept-Encoding": "identity"},
        )

    async def _get(self, http: httpx.AsyncClient, song: _Song) -> _Record | None:
        body = await self._fetch(http, _GET, song.get_params())
        if body is None:
            return None
        record = _parse(_ONE, body)
        return record if song.fits(record) else None

    async def _search(self, http: httpx.AsyncClient, song: _Song) -> _Record | None:
        body = await self._fetch(http, _SEARCH, song.search_params())
        return None if body is None else _best(_parse(_MANY, body), song)

    async def _fetch(
        self, http: httpx.AsyncClient, endpoint: str, params: dict[str, str]
    ) -> bytes | None:
        """The body of a 200 answer, None for a 404; anything else raises."""
        url = self._base.join(endpoint)
        async with http.stream("GET", url, params=params) as response:
            status = response.status_code
            if status == 404:
                return None
            if response.is_redirect:
                where = response.headers.get("Location", "")[:200]
                raise LyricsServiceError("redirect", f"{status} to {where!r} (not followed)")
            if status != 200:
                raise LyricsServiceError("status", f"{status} from /{endpoint}")
            encoding = response.headers.get("Content-Encoding", "identity").lower()
            if encoding != "identity":
                raise LyricsServiceError("malformed", f"{encoding!r} body not asked for")
            return await self._read_bounded(response)

    async def _read_bounded(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise LyricsServiceError("too_large", f"{declared} bytes declared")
        body = bytearray()
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) > self._max_bytes:
                raise LyricsServiceError("too_large", f"over {self._max_bytes} bytes")
        return bytes(body)


def _base_url(base_url: str) -> httpx.URL:
    """The base as a folder URL (so ``join`` keeps its path), or ValueError."""
    url = httpx.URL(base_url)
    if url.scheme not in ("http", "https") or not url.host or url.query or url.fragment:
        raise ValueError(f"not an http(s) base URL: {base_url!r}")
    path = url.path if url.path.endswith("/") else url.path + "/"
    return url.copy_with(path=path)


def _song(
    artist: str, title: str, album: str | None, duration_seconds: float | None
) -> _Song | None:
    artist, title = artist.strip(), title.strip()
    if not artist or not title:
        return None
    duration = duration_seconds
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        duration = None  # unknown: LRCLIB matches without it
    return _Song(artist, title, (album or "").strip() or None, duration)


def _parse(adapter: TypeAdapter[_T], body: bytes) -> _T:
    try:
        return adapter.validate_json(body)
    except ValidationError as error:
        summary = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['type']}" for e in error.errors()[:3]
        )
        raise LyricsServiceError("malformed", summary) from None


def _best(records: list[_Record], song: _Song) -> _Record | None:
    """Synced before plain before instrumental, then the closest duration, then LRCLIB's
    order (``min`` keeps the first of equals)."""
    usable = [record for record in records if song.fits(record)]
    if not usable:
        return None
    return min(usable, key=lambda r: (not r.synced, not r.has_words, song.distance(r)))


def _lyrics(record: _Record | None, endpoint: str) -> LrclibLyrics | None:
    if record is None:
        logger.info("LRCLIB has no lyrics for the song")
        return None
    via = endpoint.removeprefix("api/")
    if record.has_words:
        synced = record.synced
        text = record.synced_lyrics if synced else record.plain_lyrics
        logger.info(
            "LRCLIB %s: record %d, %s lyrics", via, record.id, "synced" if synced else "plain"
        )
        return LrclibLyrics(text=text or "", synced=synced, instrumental=False)
    logger.info("LRCLIB %s: record %d, instrumental", via, record.id)
    return LrclibLyrics(text="", synced=False, instrumental=True)


def _logged(error: LyricsServiceError) -> LyricsServiceError:
    logger.warning("LRCLIB lookup failed: %s", error)
    return error
