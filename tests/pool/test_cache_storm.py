"""The result cache under a render storm (issue 20, item 4), through the real pool.

One user pressing many distinct key/tempo buttons must not grow the cache past its limit
(stems, renders and manifests all count: measured on disk, as ``du`` counts), must not
lose the stems their own buttons need, and must not flush another user's song while it is
younger than ``min_age_seconds``.
"""

from __future__ import annotations

from pathlib import Path

from separation.audio.encode import EncodingSpec
from separation.audio.render_options import RenderOptions
from separation.cache.results import CachePolicy
from separation.jobs import JobResult, RenderRequest
from separation.pool import SeparationPool
from tests.support.pool import PoolFactory, du_bytes, request

MP3 = EncodingSpec(format="mp3", bitrate_kbps=128)
STORM = [RenderOptions(key=key) for key in (-2, -1, 1, 2)] + [
    RenderOptions(tempo=tempo) for tempo in (0.8, 0.9)
]
"""Six distinct settings: six renders, none a cache hit."""


def entry_bytes(result: JobResult) -> int:
    return du_bytes(next(iter(result.outputs.values())).parent)


async def _separated(pool: SeparationPool, song: Path, user: str) -> JobResult:
    result = await (await pool.submit(request(song, user=user, encoding=MP3))).result()
    result.release()
    return result


async def _render(pool: SeparationPool, song: JobResult, options: RenderOptions) -> JobResult:
    return await pool.render(RenderRequest(song.cache_key, options, encoding=MP3))


async def _sizes(make_pool: PoolFactory, clips: dict[int, Path]) -> tuple[int, int, int]:
    """(first song's entry, second song's entry, one render of the second song) on disk,
    measured in a pool with room for everything, sharing the cache folder."""
    roomy = await make_pool()
    first = await _separated(roomy, clips[3], "first")
    second = await _separated(roomy, clips[5], "second")
    render = await _render(roomy, second, RenderOptions(key=5))
    render.release()
    return entry_bytes(first), entry_bytes(second), entry_bytes(render)


async def test_a_render_storm_keeps_the_cache_within_its_limit_and_others_songs(
    make_pool, clips, tmp_path
):
    other_song, song, render = await _sizes(make_pool, clips)
    limit = other_song + song + 3 * render // 2
    pool = await make_pool(
        cache=CachePolicy(max_bytes=limit, min_age_seconds=3600, max_age_seconds=10**6)
    )
    other = await _separated(pool, clips[3], "other")
    mine = await _separated(pool, clips[5], "stormer")
    worst = 0
    for options in STORM:
        rendered = await _render(pool, mine, options)
        worst = max(worst, entry_bytes(rendered))
        used = du_bytes(tmp_path / "cache")
        rendered.release()
        assert used <= limit + worst, f"{used} bytes on disk, limit {limit} + {worst}"
    # The other user's song is younger than min_age: its stems are still there, and its
    # buttons still work.
    again = await _render(pool, other, RenderOptions(key=1))
    assert not again.cache_hit
    again.release()


async def test_a_render_never_evicts_the_stems_it_came_from(make_pool, clips, tmp_path):
    _, song, render = await _sizes(make_pool, clips)
    limit = song + render // 2  # the song fits, the song and a render do not
    pool = await make_pool(
        cache=CachePolicy(max_bytes=limit, min_age_seconds=0, max_age_seconds=10**6)
    )
    mine = await _separated(pool, clips[5], "stormer")
    for options in STORM[:4]:
        rendered = await _render(pool, mine, options)  # StemsExpiredError once they go
        used = du_bytes(tmp_path / "cache")
        one_entry = entry_bytes(rendered)
        rendered.release()
        assert used <= limit + one_entry, f"{used} bytes on disk, limit {limit} + {one_entry}"
