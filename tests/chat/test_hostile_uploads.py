"""Hostile uploads through the chat flow: real store, pool and ffmpeg; only the platform is
a recorder. Each test is an attack from issue 10 that worked on the old ingest path."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.chat.conversation.flow import ChatFlow
from bot.chat.conversation.types import OutgoingFile, SongUpload
from bot.process.wiring import flow_config
from bot.settings import Settings
from separation.cache.results import CachePolicy, ResultCache
from storage.store import Store
from tests.support.bot_app import make_pool
from tests.support.chat import CHAT, USER, RecordingReplier, upload_of
from tests.support.ffmpeg_log import ffmpeg_runs, most_at_once, wrapped_ffmpeg
from tests.support.hostile import (
    FORGED_BANNER,
    LYRICS_1_MB,
    counting_listener,
    hanging_program,
    headerless,
    lying_mp3,
    non_finite_wav,
    playlist_of,
    tagged_song,
)
from tests.support.media import excerpt

FlowFactory = Callable[..., Awaitable[ChatFlow]]


def _merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = _merged(merged.get(key, {}), value) if isinstance(value, dict) else value
    return merged


@pytest.fixture
async def make_flow(tmp_path, model_repo) -> AsyncIterator[FlowFactory]:
    """``await make_flow(settings_overrides, **pool_config)``: a flow on a fresh data dir."""
    opened: list[tuple[Any, Store]] = []

    async def factory(overrides: dict[str, Any] | None = None, **pool_config: Any) -> ChatFlow:
        raw = {
            "general": {"data_dir": str(tmp_path / "data")},
            "model": {"name": "tiny", "repo": str(model_repo), "device": "cpu"},
        }
        settings = Settings.model_validate(_merged(raw, overrides or {}))
        pool = make_pool(settings, **pool_config)
        await pool.start()
        store = await Store.open(settings.database_url, settings.general.data_dir)
        opened.append((pool, store))
        config = dataclasses.replace(flow_config(settings), progress_interval_seconds=0.05)
        return ChatFlow(store=store, backend=pool, config=config)

    yield factory
    for pool, store in opened:
        await pool.shutdown(5)
        await store.close()


async def _quota(flow: ChatFlow) -> Any:
    user = await flow._store.users.get("telegram", "1")
    return await flow._store.quotas.status(user, flow._config.quota_limits("telegram"))


def _uploads_left(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "data" / "uploads").iterdir())


@pytest.fixture(scope="module")
def server_secret(tmp_path_factory, clip_path, ffmpeg) -> Path:
    folder = tmp_path_factory.mktemp("server")
    return excerpt(clip_path, folder / "secret.mp3", ffmpeg, 5, "-c:a", "libmp3lame")


@pytest.mark.parametrize(
    ("name", "live", "remote"),
    [
        ("song.m3u8", False, False),
        ("song.m3u", True, False),
        ("song.m3u8", False, True),
        ("song", True, True),
    ],
)
async def test_a_playlist_reads_nothing_costs_nothing_and_connects_nowhere(
    make_flow, tmp_path, server_secret, name, live, remote
):
    flow = await make_flow()
    replier = RecordingReplier()
    with counting_listener() as listener:
        playlist = playlist_of(
            tmp_path / name, server_file=server_secret, listener=listener, remote=remote, live=live
        )
        assert await flow.handle_song(USER, CHAT, replier, upload_of(playlist)) is None
    assert listener.accepted == 0
    assert "doesn't look like audio" in replier.texts[-1]
    assert replier.files == []
    assert (await _quota(flow)).songs_used == 0
    assert _uploads_left(tmp_path) == []


async def test_a_lying_header_is_charged_its_decoded_length(make_flow, tmp_path, ffmpeg):
    flow = await make_flow()
    liar = lying_mp3(tmp_path / "liar.mp3", ffmpeg, tmp_path, claims=2, plays=20)
    job = await flow.handle_song(USER, CHAT, RecordingReplier(), upload_of(liar))
    assert job is not None and job.status == "done"
    record = await flow._store.jobs.get(job.id)
    assert record.input_duration_seconds == pytest.approx(20, abs=0.2)
    assert (await _quota(flow)).audio_minutes_used == pytest.approx(20 / 60, abs=0.01)


async def test_a_song_with_long_and_forged_tags_is_separated_and_titled_from_them(
    make_flow, tmp_path, ffmpeg
):
    """Issue 20: 1 MB of lyrics made it 'not audio'; a tag imitating ffmpeg's banner made
    the header read as 1 s of 8 kHz mono. Now it is the 4 s stereo song it is."""
    flow = await make_flow()
    tags = {"lyrics": LYRICS_1_MB, FORGED_BANNER: "v", "title": "Long Song", "artist": "Band"}
    song = tagged_song(tmp_path / "lyrics.mp3", ffmpeg, tags, seconds=4)
    replier = RecordingReplier()
    job = await flow.handle_song(USER, CHAT, replier, upload_of(song))
    assert job is not None and job.status == "done", replier.texts
    assert (await flow._store.jobs.get(job.id)).input_duration_seconds == pytest.approx(4, abs=0.1)
    assert replier.files and all(sent.title.startswith("Long Song") for sent in replier.files)
    assert all(sent.performer == "Band" for sent in replier.files)


async def test_a_lying_header_over_the_users_song_limit_is_stopped_and_refunded(
    make_flow, tmp_path, ffmpeg
):
    flow = await make_flow({"quota": {"telegram": {"max_song_minutes": 0.25}}})
    liar = lying_mp3(tmp_path / "liar.mp3", ffmpeg, tmp_path, claims=2, plays=40)
    replier = RecordingReplier()
    job = await flow.handle_song(USER, CHAT, replier, upload_of(liar))
    assert job is not None and job.status == "failed" and job.error_kind == "song_too_long"
    assert "your limit is 0.25 minutes per song" in replier.texts[-1]
    assert replier.files == []
    quota = await _quota(flow)
    assert quota.songs_used == 0 and quota.audio_minutes_used == 0


async def test_a_lying_header_past_the_bots_limit_is_refused_as_too_long(
    make_flow, tmp_path, ffmpeg
):
    flow = await make_flow({"audio": {"max_duration_seconds": 15}})
    liar = lying_mp3(tmp_path / "liar.mp3", ffmpeg, tmp_path, claims=2, plays=40)
    replier = RecordingReplier()
    job = await flow.handle_song(USER, CHAT, replier, upload_of(liar))
    assert job is not None and job.status == "failed" and job.error_kind == "too_long"
    assert "longer than 0:15" in replier.texts[-1]
    assert (await _quota(flow)).songs_used == 0


async def test_a_file_without_a_length_is_measured_before_it_is_admitted(
    make_flow, tmp_path, ffmpeg
):
    flow = await make_flow({"quota": {"telegram": {"audio_minutes_per_day": 0.25}}})
    hidden = headerless(tmp_path / "stream.mkv", ffmpeg, seconds=30)
    replier = RecordingReplier()
    assert await flow.handle_song(USER, CHAT, replier, upload_of(hidden)) is None
    assert "minutes" in replier.texts[-1]  # the daily allowance, not an admitted job
    assert (await _quota(flow)).songs_used == 0
    short = headerless(tmp_path / "short.mkv", ffmpeg, seconds=10)
    job = await flow.handle_song(USER, CHAT, RecordingReplier(), upload_of(short))
    assert job is not None and job.status == "done"
    assert (await flow._store.jobs.get(job.id)).input_duration_seconds == pytest.approx(10, abs=0.1)


async def test_a_probe_that_hangs_gets_one_sentence_and_leaves_nothing(
    make_flow, tmp_path, server_secret
):
    hangs = hanging_program(tmp_path)
    flow = await make_flow({"audio": {"header_reader_python": hangs, "probe_timeout_seconds": 0.5}})
    replier = RecordingReplier()
    assert await flow.handle_song(USER, CHAT, replier, upload_of(server_secret)) is None
    assert replier.texts[-1].startswith("Reading that file took far too long")
    assert len(replier.texts) == 2  # "Downloading...", then that one sentence
    assert _uploads_left(tmp_path) == []
    assert await flow._store.jobs.active(await flow._store.users.get("telegram", "1")) == []


async def test_non_finite_samples_are_a_damaged_file_and_cost_nothing(make_flow, tmp_path):
    flow = await make_flow()
    replier = RecordingReplier()
    job = await flow.handle_song(USER, CHAT, replier, upload_of(non_finite_wav(tmp_path / "n.wav")))
    assert job is not None and job.status == "failed" and job.error_kind == "corrupt"
    assert "damaged" in replier.texts[-1]
    assert "reference" not in replier.texts[-1]  # the user's file, not our bug
    assert (await _quota(flow)).songs_used == 0


async def test_a_song_is_probed_once_and_decoded_once(make_flow, tmp_path, ffmpeg, clip_path):
    wrapper, log = wrapped_ffmpeg(tmp_path, ffmpeg)
    (tmp_path / "reader").mkdir()
    python, probes = wrapped_ffmpeg(tmp_path / "reader", sys.executable)
    flow = await make_flow(
        {"general": {"ffmpeg_path": wrapper}, "audio": {"header_reader_python": python}}
    )
    song = excerpt(clip_path, tmp_path / "clip.mp3", ffmpeg, 4, "-c:a", "libmp3lame")
    job = await flow.handle_song(USER, CHAT, RecordingReplier(), upload_of(song))
    assert job is not None and job.status == "done"
    assert len([run for run in ffmpeg_runs(probes) if ".upload" in run]) == 1  # the flow's
    on_the_upload = [run for run in ffmpeg_runs(log) if ".upload" in run]
    assert len(on_the_upload) == 1 and "-f f32le" in on_the_upload[0]  # the pool's decode


@pytest.mark.parametrize("slots", [1, 2])
async def test_header_checks_run_a_bounded_number_at_a_time(make_flow, tmp_path, slots):
    python, log = wrapped_ffmpeg(tmp_path, sys.executable, pause=0.3)  # the header reader's
    flow = await make_flow(
        {"audio": {"max_parallel_probes": slots, "header_reader_python": python}}
    )
    junk = tmp_path / "notes.mp3"
    junk.write_text("not a song\n" * 100)
    users = [dataclasses.replace(USER, user_id=str(n)) for n in range(4)]
    repliers = [RecordingReplier() for _ in users]
    await asyncio.gather(
        *(
            flow.handle_song(u, CHAT, r, upload_of(junk))
            for u, r in zip(users, repliers, strict=True)
        )
    )
    assert all("doesn't look like audio" in r.texts[-1] for r in repliers)
    assert len([run for run in ffmpeg_runs(log) if ".upload" in run]) == 4
    assert most_at_once(log) == slots


async def test_downloads_run_a_bounded_number_at_a_time(make_flow, tmp_path):
    flow = await make_flow({"audio": {"max_parallel_downloads": 2}})
    at_once = most = 0

    def slow_upload() -> SongUpload:
        async def stream() -> AsyncIterator[bytes]:
            nonlocal at_once, most
            at_once += 1
            most = max(most, at_once)
            for _ in range(5):
                await asyncio.sleep(0.02)
                yield b"not audio " * 10
            at_once -= 1

        return SongUpload(stream=stream, file_name="a.mp3", declared_size=500)

    users = [dataclasses.replace(USER, user_id=str(n)) for n in range(6)]
    await asyncio.gather(
        *(flow.handle_song(u, CHAT, RecordingReplier(), slow_upload()) for u in users)
    )
    assert most == 2


class EvictingReplier(RecordingReplier):
    """Delivers while another process sharing the cache sweeps it as hard as it can."""

    def __init__(self, cache_dir: Path) -> None:
        super().__init__()
        self.cache_dir = cache_dir
        self.sizes: list[int] = []

    async def send_files(self, files: list[OutgoingFile]) -> None:
        greedy = ResultCache(self.cache_dir, CachePolicy(max_bytes=0, min_age_seconds=0))
        await asyncio.to_thread(greedy.evict)
        self.sizes = [file.path.stat().st_size for file in files]
        await super().send_files(files)


async def test_a_result_being_delivered_is_never_evicted(make_flow, tmp_path, server_secret):
    cache_dir = tmp_path / "data" / "cache"
    flow = await make_flow(
        {"pool": {"cache_min_age_minutes": 0}},
        cache=CachePolicy(max_bytes=0, min_age_seconds=0),
    )
    replier = EvictingReplier(cache_dir)
    job = await flow.handle_song(USER, CHAT, replier, upload_of(server_secret))
    assert job is not None and job.status == "done"
    assert len(replier.sizes) == 2 and all(size > 1000 for size in replier.sizes)
    # Delivered: now nothing holds it, and a sweep removes it.
    swept = ResultCache(cache_dir, CachePolicy(max_bytes=0, min_age_seconds=0)).evict()
    assert len(swept) == 1
