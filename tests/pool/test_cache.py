"""The result cache: verified hits, atomic entries, LRU and age eviction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from separation.cache import MANIFEST, CachePolicy, ResultCache, cache_key


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _store(cache: ResultCache, key: str, size: int = 1000) -> None:
    staging = cache.staging()
    outputs = {}
    for name in ("instrumental", "vocals"):
        path = staging / f"{name}.mp3"
        path.write_bytes(name.encode() * (size // len(name)))
        outputs[name] = path
    cache.commit(key, staging, outputs, {"duration_seconds": 3.0})


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


def test_least_recently_used_entries_go_first_but_young_ones_stay(tmp_path, clock):
    policy = CachePolicy(max_bytes=4500, max_age_seconds=10**6, min_age_seconds=60)
    cache = ResultCache(tmp_path, policy, clock=clock)
    keys = [_key(str(index)) for index in range(4)]  # 2 kB each
    for key in keys[:3]:
        _store(cache, key)
        clock.now += 100
    assert cache.lookup(keys[0]) is not None  # used again: now the most recent
    clock.now += 100
    assert cache.evict() == [keys[1]]  # 6 kB -> 4 kB
    _store(cache, keys[3])
    clock.now += 30  # keys[3] is younger than min_age: kept even over the limit
    assert cache.evict() == [keys[2]]
    assert cache.lookup(keys[3]) is not None and cache.lookup(keys[0]) is not None


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
    assert cache.size_bytes() == sum(sizes) + len((entry.folder / MANIFEST).read_bytes())
    assert len(list(Path(tmp_path).glob(f"??/*/{MANIFEST}"))) == 1
