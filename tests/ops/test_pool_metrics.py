"""Batch sizes, queue length and the cache's disk use reach /metrics from a pool built by
the app's wiring."""

from __future__ import annotations

import dataclasses

from prometheus_client.parser import text_string_to_metric_families

from bot.ops.metrics import Metrics
from bot.process.backend import build_pool, pool_config
from bot.settings import Settings
from separation.audio.render_options import RenderOptions
from separation.jobs import RenderRequest, SeparationRequest
from tests.support.media import excerpt
from tests.support.pool import du_bytes


async def test_every_forward_pass_is_counted(tmp_path, model_repo, clip_path, ffmpeg):
    settings = Settings.model_validate(
        {
            "general": {"data_dir": str(tmp_path / "data")},
            "model": {"name": "tiny", "repo": str(model_repo), "device": "cpu"},
            "pool": {"batch_size": 2},
        }
    )
    metrics = Metrics()
    config = dataclasses.replace(pool_config(settings), warm_up=False)
    pool = build_pool(settings, config, metrics=metrics)
    await pool.start()
    try:
        song = excerpt(clip_path, tmp_path / "song.mp3", ffmpeg, 9, "-c:a", "libmp3lame")
        handle = await pool.submit(SeparationRequest(user_ref="cli:1", input_path=song))
        await handle.result()
    finally:
        await pool.shutdown(5)
    text = metrics.render().decode()
    # 9 s with the tiny model's 4 s segments: 3 segments, in batches of at most 2.
    assert "karaoke_batch_size_count 2.0" in text
    assert "karaoke_batch_size_sum 3.0" in text


async def test_the_cache_reports_what_it_takes_on_disk(tmp_path, model_repo, clip_path, ffmpeg):
    settings = Settings.model_validate(
        {
            "general": {"data_dir": str(tmp_path / "data")},
            "model": {"name": "tiny", "repo": str(model_repo), "device": "cpu"},
            "pool": {"cache_max_bytes": 123_456_789},
        }
    )
    metrics = Metrics()
    config = dataclasses.replace(pool_config(settings), warm_up=False)
    pool = build_pool(settings, config, metrics=metrics)
    await pool.start()
    try:
        song = excerpt(clip_path, tmp_path / "song.mp3", ffmpeg, 5, "-c:a", "libmp3lame")
        handle = await pool.submit(SeparationRequest(user_ref="cli:1", input_path=song))
        separated = await handle.result()
        separated.release()
        render = await pool.render(RenderRequest(separated.cache_key, RenderOptions(key=2)))
        render.release()
    finally:
        await pool.shutdown(5)
    text = metrics.render().decode()
    assert _value(text, "karaoke_cache_limit_bytes") == 123_456_789
    # Outputs, lossless stems, the render and manifests: what du counts.
    on_disk = du_bytes(config.cache_dir)
    assert on_disk > 3 * sum(path.stat().st_size for path in separated.outputs.values())
    assert _value(text, "karaoke_cache_bytes") == on_disk


def _value(text: str, name: str) -> float:
    """The sample ``name`` in a Prometheus exposition."""
    samples = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]
    assert len(samples) == 1, f"{name}: {samples}"
    return samples[0]
