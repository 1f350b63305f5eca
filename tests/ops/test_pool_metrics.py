"""Batch sizes and queue length reach /metrics from a pool built by the app's wiring."""

from __future__ import annotations

import dataclasses

from bot.backend import build_pool, pool_config
from bot.ops.metrics import Metrics
from bot.settings import Settings
from separation.jobs import SeparationRequest
from tests.conftest import excerpt


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
