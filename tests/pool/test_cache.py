"""The result cache: verified hits, atomic entries, eviction by disk use and age."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from separation.cache.results import (
    MANIFEST,
    RENDER_OF,
    CacheEntry,
    CachePolicy,
    CacheUsage,
    ResultCache,
    cache_key,
)
from tests.support.pool import du_bytes


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _store(
    cache: ResultCache,
    key: str,
    size: int = 1000,
    *,
    stems_size: int = 0,
    render_of: str | None = None,
) -> CacheEntry:
    """Commit an entry of two ``size``-byte outputs (plus two stems of ``stems_size``;
    a render of ``render_of``); the caller holds its pin until it drops the entry."""
    staging = cache.staging()
    outputs, stems = {}, {}
    for name in ("instrumental", "vocals"):
        path = staging / f"{name}.mp3"
        path.write_bytes(name.encode() * (size // len(name)))
        outputs[name] = path
        if stems_size:
            stems[name] = staging / f"{name}.stem.flac"
            stems[name].write_bytes(os.urandom(stems_size))
    metadata: dict[str, object] = {"duration_seconds": 3.0}
    if render_of is not None:
        metadata[RENDER_OF] = render_of
    return cache.commit(key, staging, outputs, metadata, stems)


def _kept(cache: ResultCache, *keys: str) -> list[bool]:
    """Whether each key is still in the cache (without touching its last use)."""
    return [(cache.root / key[:2] / key / MANIFEST).exists() for key in keys]


def _key(text: str) -> str:
    return cache_key(text, {"model": "tiny"})


def test_a_stored_entry_is_served_with_its_outputs_in_order(tmp_path, clock):
    cache = ResultCache(tmp_path, CachePolicy(), clock=clock)
    key = _key("song")
    assert cache.lookup(key) is None
    _store(cache, key)
    entry = cache.lookup(key)
    assert entry is not None
    assert list(entry.outputs) == ["instrumental", "vocals"]
    assert entry.outputs["vocals"].read_bytes().startswith(b"vocals")
    assert entry.metadata == {"duration_seconds": 3.0}
    assert cache_key("song", {"model": "tiny"}) != cache_key("song", {"model": "other"})


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "manifest"])
def test_a_corrupt_or_incomplete_entry_is_not_served_and_is_removed(tmp_path, clock, damage):
    cache = ResultCache(tmp_path, CachePolicy(), clock=clock)
    key = _key("song")
    _store(cache, key)
    entry = cache.lookup(key)
    assert entry is not None and entry.pin is not None
    entry.pin.release()  # delivered; a pinned entry would be kept, damaged or not
    vocals = entry.outputs["vocals"]
    if damage == "truncate":
        vocals.write_bytes(vocals.read_bytes()[:10])
    elif damage == "flip":
        data = bytearray(vocals.read_bytes())
        data[5] ^= 0xFF
        vocals.write_bytes(bytes(data))
    elif damage == "delete":
        vocals.unlink()
    else:
        (entry.folder / MANIFEST).write_text("{not json")
    assert cache.lookup(key) is None
    assert not entry.folder.exists()


def test_an_entry_without_manifest_is_never_served(tmp_path, clock):
    """A crash before the manifest leaves only a staging folder, never an entry."""
    cache = ResultCache(tmp_path, CachePolicy(), clock=clock)
    staging = cache.staging()
    (staging / "instrumental.mp3").write_bytes(b"partial")
    assert cache.lookup(_key("song")) is None


def test_least_recently_used_songs_go_first_but_young_ones_stay(tmp_path, clock):
    roomy = ResultCache(tmp_path, CachePolicy(max_bytes=10**9, max_age_seconds=10**6), clock=clock)
    keys = [_key(str(index)) for index in range(4)]
    for key in keys[:3]:
        _store(roomy, key, size=20_000)
        clock.now += 100
    entry_bytes = du_bytes(tmp_path / keys[0][:2] / keys[0])
    assert roomy.lookup(keys[0]) is not None  # used again: now the most recent
    clock.now += 100
    policy = CachePolicy(
        max_bytes=roomy.size_bytes() - entry_bytes // 2, max_age_seconds=10**6, min_age_seconds=60
    )
    cache = ResultCache(tmp_path, policy, clock=clock)
    assert cache.evict() == [keys[1]]
    young = _store(roomy, keys[3], size=20_000)  # no room was needed in the roomy cache
    young.pin.release()
    clock.now += 30  # keys[3] is younger than min_age: kept even over the limit
    assert cache.evict() == [keys[2]]
    assert _kept(cache, keys[0], keys[3]) == [True, True]


def test_stems_manifests_and_staging_count_against_the_limit(tmp_path, clock):
    """Issue 20: only the outputs counted, and disk use settled near 6x the limit."""
    policy = CachePolicy(max_bytes=200_000, max_age_seconds=10**6, min_age_seconds=0)
    cache = ResultCache(tmp_path, policy, clock=clock)
    for index in range(4):  # 2 x 10 kB outputs, 2 x 50 kB stems each
        _store(cache, _key(str(index)), size=10_000, stems_size=50_000).pin.release()
        clock.now += 10
        assert cache.size_bytes() == du_bytes(tmp_path) <= 200_000 + 130_000
    cache.evict()
    assert du_bytes(tmp_path) <= 200_000
    assert cache.usage() == CacheUsage(du_bytes(tmp_path), 200_000)
    in_flight = cache.staging() / "vocals.stem.flac"  # a song being written counts too
    in_flight.write_bytes(os.urandom(150_000))
    cache.evict()
    assert du_bytes(tmp_path) <= 200_000 and in_flight.exists()


def test_renders_go_before_songs_and_a_render_being_sent_keeps_its_song(tmp_path, clock):
    roomy = ResultCache(tmp_path, CachePolicy(max_bytes=10**9, max_age_seconds=10**6), clock=clock)
    first, second = _key("first"), _key("second")
    first_render, second_render = _key("first, -1 key"), _key("second, -1 key")
    for key in (first, second):
        _store(roomy, key, size=20_000).pin.release()
        clock.now += 10
    _store(roomy, first_render, size=20_000, render_of=first).pin.release()
    clock.now += 10
    being_sent = _store(roomy, second_render, size=20_000, render_of=second)
    clock.now += 10
    entry_bytes = du_bytes(tmp_path / first[:2] / first)
    tight = CachePolicy(
        max_bytes=roomy.size_bytes() - 3 * entry_bytes // 2,
        max_age_seconds=10**6,
        min_age_seconds=0,
    )
    # Least recently used first would remove both songs and keep both renders. The
    # pinned render cannot go, and its song stays with it: the buttons need the stems.
    assert ResultCache(tmp_path, tight, clock=clock).evict() == [first_render, first]
    assert _kept(roomy, second, second_render) == [True, True]
    being_sent.pin.release()


def test_a_render_never_makes_room_by_evicting_its_own_song(tmp_path, clock, caplog):
    song = _key("song")
    roomy = ResultCache(tmp_path, CachePolicy(max_bytes=10**9, max_age_seconds=10**6), clock=clock)
    _store(roomy, song, size=10_000, stems_size=50_000).pin.release()
    limit = roomy.size_bytes() + 20_000  # the song fits; the song and a render do not
    policy = CachePolicy(max_bytes=limit, max_age_seconds=10**6, min_age_seconds=0)
    cache = ResultCache(tmp_path, policy, clock=clock)
    for key in range(-3, 4):  # a storm of distinct keys, each delivered in turn
        clock.now += 10
        source = cache.lookup(song)
        assert source is not None and source.stems, f"stems gone before key {key}"
        render = _store(cache, _key(f"song, key {key}"), size=10_000, render_of=song)
        source.pin.release()  # the renderer lets go of the song once the render is in
        with caplog.at_level(logging.WARNING, logger="separation.cache.results"):
            cache.evict()  # what the pool does after each render, while it is sent
        render_bytes = du_bytes(render.folder)
        assert du_bytes(tmp_path) <= limit + render_bytes
        render.pin.release()
    assert "over its limit" in caplog.text  # the song and the render being sent
    assert _kept(cache, song) == [True]


def test_a_storm_of_renders_never_flushes_young_songs(tmp_path, clock):
    songs = [_key("other user's song"), _key("storming user's song")]
    roomy = ResultCache(tmp_path, CachePolicy(max_bytes=10**9, max_age_seconds=10**6), clock=clock)
    for key in songs:
        _store(roomy, key, size=10_000, stems_size=50_000).pin.release()
    limit = roomy.size_bytes() + 60_000  # room for a render or two
    policy = CachePolicy(max_bytes=limit, max_age_seconds=10**6, min_age_seconds=3600)
    cache = ResultCache(tmp_path, policy, clock=clock)
    for index in range(12):
        clock.now += 60  # an hour of storm, less a minute: the other song is still young
        render = _store(cache, _key(f"render {index}"), size=10_000, render_of=songs[1])
        assert du_bytes(tmp_path) <= limit + du_bytes(render.folder)
        render.pin.release()
    assert _kept(cache, *songs) == [True, True]
    clock.now += 3600  # now both are old and unused: a render may push them out, but
    # never the one it is made from
    _store(cache, _key("render 12"), size=60_000, render_of=songs[1]).pin.release()
    assert _kept(cache, *songs) == [False, True]


def test_entries_older_than_max_age_are_neither_served_nor_kept(tmp_path, clock):
    policy = CachePolicy(max_bytes=10**9, max_age_seconds=3600, min_age_seconds=60)
    cache = ResultCache(tmp_path, policy, clock=clock)
    _store(cache, _key("old"))
    clock.now += 1800
    _store(cache, _key("new"))
    clock.now += 1900
    assert cache.evict() == [_key("old")]
    clock.now += 2000  # "new" is 3900 s old now
    assert cache.lookup(_key("new")) is None  # expired on lookup too
    manifests = list(tmp_path.glob(f"??/*/{MANIFEST}"))
    assert manifests == []


def test_commit_replaces_an_existing_entry(tmp_path, clock):
    cache = ResultCache(tmp_path, CachePolicy(), clock=clock)
    key = _key("song")
    _store(cache, key, size=1000)
    _store(cache, key, size=3000)
    entry = cache.lookup(key)
    assert entry is not None
    manifest = json.loads((entry.folder / MANIFEST).read_text())
    sizes = [path.stat().st_size for path in entry.outputs.values()]
    assert [item["size"] for item in manifest["outputs"]] == sizes
    assert sizes[0] > 2000
    assert cache.size_bytes() == du_bytes(tmp_path)
    assert len(list(Path(tmp_path).glob(f"??/*/{MANIFEST}"))) == 1


def test_young_songs_give_way_to_a_new_song_but_never_to_a_render(tmp_path, clock, caplog):
    """Young songs alone over the limit (too small for the traffic): a new song keeps
    it over by no more than itself, a render never takes a young song's place."""
    policy = CachePolicy(max_bytes=350_000, max_age_seconds=10**6, min_age_seconds=3600)
    cache = ResultCache(tmp_path, policy, clock=clock)
    songs = [_key(f"song {index}") for index in range(6)]
    being_sent = None
    for index, key in enumerate(songs):  # each ~130 kB: a flood of songs in minutes
        clock.now += 60
        song = _store(cache, key, size=10_000, stems_size=50_000)
        assert du_bytes(tmp_path) <= 350_000 + du_bytes(song.folder)
        song.pin.release()
        if index == 0:  # the first song's render is being sent all along
            being_sent = _store(cache, _key("song 0, key 1"), size=10_000, render_of=key)
    assert "the oldest make room" in caplog.text
    assert _kept(cache, *songs) == [True, False, False, False, True, True]
    assert being_sent is not None
    being_sent.pin.release()
    render = _store(cache, _key("song 5, key 1"), size=10_000, render_of=songs[5])
    assert _kept(cache, *songs) == [True, False, False, False, True, True]
    assert _kept(cache, _key("song 0, key 1")) == [False]  # renders go first
    render.pin.release()


def test_touch_counts_an_entry_as_used_without_reading_its_files(tmp_path, clock):
    cache = ResultCache(tmp_path, CachePolicy(max_bytes=10**9, max_age_seconds=10**6), clock=clock)
    song, other = _key("song"), _key("other")
    for key in (song, other):
        _store(cache, key, size=20_000).pin.release()
        clock.now += 100
    (tmp_path / song[:2] / song / "vocals.mp3").write_bytes(b"changed")  # never read
    clock.now += 100
    assert cache.touch(song) and not cache.touch(_key("never stored"))
    assert os.stat(tmp_path / song[:2] / song / MANIFEST).st_mtime == clock.now
    assert os.stat(tmp_path / other[:2] / other / MANIFEST).st_mtime < clock.now
