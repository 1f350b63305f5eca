"""The ``[pool]`` settings section and its translation into a ``PoolConfig``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bot.process.backend import pool_config
from bot.settings import ConfigError, load_settings
from separation.model.batch_sweep import DEFAULT_SWEEP_SIZES


def _settings(tmp_path: Path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load_settings(path, environ={})


def test_defaults_follow_the_device(tmp_path):
    settings = _settings(tmp_path, '[general]\ndata_dir = "d"\n[model]\ndevice = "cpu"\n')
    config = pool_config(settings)
    assert config.devices == (torch.device("cpu"),)
    assert config.batch_size == 1 and config.max_running_jobs == 2
    data = tmp_path / "d"  # relative to the config file's folder
    assert config.cache_dir == data / "cache" and config.tmp_root == data / "tmp"
    assert config.cache.max_age_seconds == 24 * 3600 and config.cache.min_age_seconds == 3600
    assert pool_config(settings, batch_size=3).max_running_jobs == 3


def test_an_unset_batch_size_is_swept_and_a_set_one_is_not(tmp_path):
    unset = _settings(tmp_path, "[pool]\nbatch_size = 0\n")
    assert pool_config(unset).sweep_batch_sizes == DEFAULT_SWEEP_SIZES
    assert pool_config(unset, batch_size=2).sweep_batch_sizes == ()  # a flag decided
    assert pool_config(_settings(tmp_path, "[pool]\nbatch_size = 3\n")).sweep_batch_sizes == ()


def test_every_setting_reaches_the_pool(tmp_path):
    settings = _settings(
        tmp_path,
        """
[pool]
devices = ["cpu", "cpu"]
batch_size = 2
max_running_jobs = 5
max_queued_jobs = 7
max_jobs_per_user = 1
job_timeout_seconds = 60
cache_dir = "/srv/cache"
cache_max_bytes = 1000
cache_max_age_hours = 2
cache_min_age_minutes = 1
""",
    )
    config = pool_config(settings)
    assert config.devices == (torch.device("cpu"),) * 2
    assert (config.batch_size, config.max_running_jobs, config.max_queued_jobs) == (2, 5, 7)
    assert config.max_jobs_per_user == 1 and config.job_timeout_seconds == 60
    assert config.cache_dir == Path("/srv/cache") and config.cache.max_bytes == 1000
    assert config.cache.max_age_seconds == 7200 and config.cache.min_age_seconds == 60


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[pool]\ndevices = ["gpu"]\n', "pool.devices"),
        ("[pool]\nmax_queued_jobs = 0\n", "pool.max_queued_jobs"),
        ("[pool]\nbatch_sise = 2\n", "unknown setting 'pool.batch_sise'"),
    ],
)
def test_bad_pool_settings_name_the_setting(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        _settings(tmp_path, text)
