"""The LRCLIB client against a fake LRCLIB on 127.0.0.1: what it finds, what it asks (and
that it asks nothing else), and how it survives a hostile or broken server."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from separation.errors import LyricsServiceError
from separation.lyrics.lrclib import USER_AGENT, LrclibClient, LrclibLyrics
from tests.support.fake_lrclib import (
    GET,
    SEARCH,
    Drip,
    FakeLrclib,
    Huge,
    Raw,
    Redirect,
    Stall,
    Track,
    record_of,
    running_fake_lrclib,
)

SYNCED = "[00:12.00] Is this the real life?\n[00:15.50] Is this just fantasy?\n"
PLAIN = "Is this the real life?\nIs this just fantasy?\n"
SONG = Track(artist="Queen", title="Bohemian Rhapsody", album="A Night at the Opera", duration=354)
MAX_BYTES = 50_000


@pytest.fixture
async def lrclib() -> AsyncIterator[FakeLrclib]:
    async with running_fake_lrclib() as fake:
        yield fake


def client_of(fake: FakeLrclib, *, timeout_seconds: float = 5.0) -> LrclibClient:
    return LrclibClient(fake.base_url, timeout_seconds=timeout_seconds, max_bytes=MAX_BYTES)


async def find_song(client: LrclibClient, duration: float | None = 355.2) -> LrclibLyrics | None:
    return await client.find(
        artist="Queen", title="Bohemian Rhapsody", album="A Night at the Opera",
        duration_seconds=duration,
    )  # fmt: skip


async def failure_of(client: LrclibClient) -> LyricsServiceError:
    with pytest.raises(LyricsServiceError) as raised:
        await find_song(client)
    return raised.value


# -- found, not found ----------------------------------------------------------------------
async def test_synced_lyrics_are_found_with_one_get_that_names_the_song(
    lrclib: FakeLrclib,
) -> None:
    lrclib.add(replace(SONG, synced=SYNCED, plain=PLAIN))

    found = await find_song(client_of(lrclib))

    assert found == LrclibLyrics(text=SYNCED, synced=True, instrumental=False)
    [asked] = lrclib.requests
    assert asked.path == GET
    assert asked.query == {
        "artist_name": "Queen",
        "track_name": "Bohemian Rhapsody",
        "album_name": "A Night at the Opera",
        "duration": "355",
    }
    assert asked.user_agent == USER_AGENT


async def test_plain_lyrics_are_found_as_not_synced(lrclib: FakeLrclib) -> None:
    lrclib.add(replace(SONG, plain=PLAIN))

    assert await find_song(client_of(lrclib)) == LrclibLyrics(
        PLAIN, synced=False, instrumental=False
    )


async def test_an_instrumental_has_no_text(lrclib: FakeLrclib) -> None:
    lrclib.add(replace(SONG, instrumental=True))

    assert await find_song(client_of(lrclib)) == LrclibLyrics("", synced=False, instrumental=True)


async def test_not_found_asks_get_then_search_and_answers_none(lrclib: FakeLrclib) -> None:
    lrclib.add(Track(artist="Someone Else", title="Another Song", duration=200, synced=SYNCED))

    assert await find_song(client_of(lrclib)) is None
    assert lrclib.paths == [GET, SEARCH]
    assert lrclib.requests[1].query == {"artist_name": "Queen", "track_name": "Bohemian Rhapsody"}


async def test_search_is_the_fallback_when_get_misses(lrclib: FakeLrclib) -> None:
    # LRCLIB's get wants the exact title; search finds the remaster by a part of it.
    remaster = "Bohemian Rhapsody - Remastered 2011"
    lrclib.add(replace(SONG, title=remaster, synced=SYNCED))

    found = await find_song(client_of(lrclib))

    assert found == LrclibLyrics(SYNCED, synced=True, instrumental=False)
    assert lrclib.paths == [GET, SEARCH]


async def test_search_picks_synced_lyrics_of_the_right_duration(lrclib: FakeLrclib) -> None:
    live = replace(SONG, title="Bohemian Rhapsody (Live)")
    lrclib.add(replace(live, duration=355, plain="plain, closest of all"))
    lrclib.add(replace(live, duration=420, synced="[00:01.00] synced, far too long"))
    lrclib.add(replace(live, duration=351, synced="[00:01.00] synced, over 3 s off"))
    lrclib.add(replace(live, duration=357, synced="[00:01.00] synced, 1.8 s off"))
    lrclib.add(replace(live, duration=356, synced="[00:01.00] synced, closest"))

    found = await find_song(client_of(lrclib), duration=355.2)

    assert found == LrclibLyrics("[00:01.00] synced, closest", synced=True, instrumental=False)


async def test_search_results_all_of_the_wrong_duration_are_not_found(lrclib: FakeLrclib) -> None:
    lrclib.add(replace(SONG, title="Bohemian Rhapsody (Live)", synced=SYNCED))

    assert await find_song(client_of(lrclib), duration=300) is None


async def test_without_a_duration_none_is_sent_and_any_duration_fits(lrclib: FakeLrclib) -> None:
    lrclib.add(replace(SONG, synced=SYNCED))

    assert await find_song(client_of(lrclib), duration=None) is not None
    assert "duration" not in lrclib.requests[0].query


async def test_a_get_answer_of_another_length_or_without_words_is_a_miss(
    lrclib: FakeLrclib,
) -> None:
    # A server that ignores the duration (or a record emptied since): search is asked.
    wrong = record_of(replace(SONG, duration=180, synced=SYNCED), 1)
    lrclib.misbehave(GET, Raw(200, json.dumps(wrong).encode()))

    assert await find_song(client_of(lrclib)) is None

    empty = record_of(SONG, 2)
    lrclib.misbehave(GET, Raw(200, json.dumps(empty).encode()))

    assert await find_song(client_of(lrclib)) is None
    assert lrclib.paths == [GET, SEARCH, GET, SEARCH]


async def test_a_blank_artist_or_title_asks_nothing(lrclib: FakeLrclib) -> None:
    client = client_of(lrclib)

    assert await client.find(artist=" ", title="Song", album=None, duration_seconds=1) is None
    assert await client.find(artist="A", title="", album=None, duration_seconds=1) is None
    assert lrclib.requests == []


# -- nothing asked but the base URL --------------------------------------------------------
@pytest.mark.parametrize(
    ("artist", "title", "album"),
    [
        ("AC/DC", "Back In Black", "../../admin"),
        ("Who?", "What #1 & more=yes", "a/b?c#d"),
        ("..", "../../../etc/passwd", "%2e%2e%2f"),
    ],
)
async def test_names_stay_query_values(
    lrclib: FakeLrclib, artist: str, title: str, album: str
) -> None:
    await LrclibClient(lrclib.base_url, timeout_seconds=5, max_bytes=MAX_BYTES).find(
        artist=artist, title=title, album=album, duration_seconds=200
    )

    assert lrclib.paths == [GET, SEARCH]
    assert lrclib.requests[0].query == {
        "artist_name": artist, "track_name": title, "album_name": album, "duration": "200",
    }  # fmt: skip


async def test_a_base_url_with_a_path_keeps_it(lrclib: FakeLrclib) -> None:
    client = LrclibClient(
        f"{lrclib.base_url}/mirror/lrclib", timeout_seconds=5, max_bytes=MAX_BYTES
    )

    assert await find_song(client) is None
    assert lrclib.paths == ["/mirror/lrclib/api/get", "/mirror/lrclib/api/search"]


def test_a_base_url_that_is_not_http_is_refused() -> None:
    for base in ("ftp://lrclib.net", "lrclib.net", "https://lrclib.net/?q=1"):
        with pytest.raises(ValueError, match="base URL"):
            LrclibClient(base, timeout_seconds=1, max_bytes=1000)


async def test_a_redirect_is_not_followed(lrclib: FakeLrclib) -> None:
    async with running_fake_lrclib() as elsewhere:
        elsewhere.add(replace(SONG, synced=SYNCED))
        lrclib.misbehave(GET, Redirect(f"{elsewhere.base_url}{GET}?track_name=x"))

        failure = await failure_of(client_of(lrclib))

        assert failure.kind == "redirect"
        assert elsewhere.requests == []
        assert lrclib.paths == [GET]


# -- a hostile or broken server ------------------------------------------------------------
@pytest.mark.parametrize("answer", [Drip(interval_seconds=0.05), Stall()], ids=["drip", "stall"])
async def test_a_slow_server_is_cut_at_the_timeout_of_the_whole_lookup(
    lrclib: FakeLrclib, answer: Drip | Stall
) -> None:
    lrclib.misbehave(GET, answer)
    started = time.monotonic()

    failure = await failure_of(client_of(lrclib, timeout_seconds=0.5))

    elapsed = time.monotonic() - started
    assert failure.kind == "timeout"
    assert 0.45 <= elapsed < 1.5, elapsed


async def test_the_timeout_covers_both_requests(lrclib: FakeLrclib) -> None:
    lrclib.misbehave(GET, Raw(404, b'{"code": 404}'))
    lrclib.misbehave(SEARCH, Drip(interval_seconds=0.05))
    started = time.monotonic()

    failure = await failure_of(client_of(lrclib, timeout_seconds=0.5))

    assert failure.kind == "timeout"
    assert time.monotonic() - started < 1.5
    assert lrclib.paths == [GET, SEARCH]


@pytest.mark.parametrize("declare_length", [True, False], ids=["declared", "chunked"])
async def test_a_huge_answer_is_refused(lrclib: FakeLrclib, declare_length: bool) -> None:
    lrclib.misbehave(GET, Huge(size=20 * MAX_BYTES, declare_length=declare_length))

    assert (await failure_of(client_of(lrclib))).kind == "too_large"


async def test_an_answer_just_under_the_cap_is_read(lrclib: FakeLrclib) -> None:
    lrclib.misbehave(GET, Huge(size=MAX_BYTES - 100))

    found = await find_song(client_of(lrclib), duration=None)

    assert found is not None and found.text.startswith("la la ")
    assert MAX_BYTES - 1000 < len(found.text) < MAX_BYTES


def song_record(**changes: object) -> bytes:
    """SONG's record as LRCLIB sends it, with ``changes`` (None: the field left out)."""
    fields = {**record_of(SONG, 1), **changes}
    return json.dumps({key: value for key, value in fields.items() if value is not None}).encode()


WRONG_SCHEMAS = {
    "not json": (GET, b"{not json"),
    "html": (GET, b"<html>busy</html>"),
    "id a string": (GET, song_record(id="1")),
    "instrumental a string": (GET, song_record(instrumental="yes")),
    "lyrics a number": (GET, song_record(syncedLyrics=5)),
    "no trackName": (GET, song_record(trackName=None)),
    "NaN duration": (GET, song_record(duration=float("nan"))),
    "a list from get": (GET, json.dumps([record_of(SONG, 1)]).encode()),
    "an object from search": (SEARCH, song_record()),
}


@pytest.mark.parametrize(("path", "body"), WRONG_SCHEMAS.values(), ids=WRONG_SCHEMAS.keys())
async def test_an_answer_not_shaped_like_the_api_is_malformed(
    lrclib: FakeLrclib, path: str, body: bytes
) -> None:
    if path == SEARCH:
        lrclib.misbehave(GET, Raw(404, b""))
    lrclib.misbehave(path, Raw(200, body))

    assert (await failure_of(client_of(lrclib))).kind == "malformed"


async def test_a_compressed_answer_not_asked_for_is_refused(lrclib: FakeLrclib) -> None:
    # A gzip bomb is small on the wire: compressed bodies are neither asked for nor read.
    # This one holds a valid record, then 10 MB of JSON whitespace in 10 kB.
    bomb = gzip.compress(song_record(syncedLyrics=SYNCED) + b" " * 10_000_000)
    assert len(bomb) < MAX_BYTES
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    lrclib.misbehave(GET, Raw(200, bomb, headers=headers))

    failure = await failure_of(client_of(lrclib))

    assert (failure.kind, failure.detail) == ("malformed", "'gzip' body not asked for")


@pytest.mark.parametrize("status", [500, 503, 429, 400])
async def test_an_error_status_is_a_service_failure(lrclib: FakeLrclib, status: int) -> None:
    lrclib.misbehave(GET, Raw(status, b'{"code": 500, "message": "oops"}'))

    failure = await failure_of(client_of(lrclib))

    assert failure.kind == "status"
    assert str(status) in str(failure)


async def test_an_unreachable_server_is_a_service_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    client = LrclibClient(f"http://127.0.0.1:{closed_port}", timeout_seconds=5, max_bytes=1000)

    with caplog.at_level(logging.WARNING, logger="separation.lyrics.lrclib"):
        failure = await failure_of(client)

    assert failure.kind == "unreachable"
    assert "LRCLIB lookup failed" in caplog.text
