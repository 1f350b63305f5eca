"""The health server on 127.0.0.1 (ephemeral port), hit with a real aiohttp client."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.ops.health import HealthServer, HealthServerError, Readiness
from bot.ops.metrics import Metrics
from bot.settings import HealthSettings, load_settings

HEALTHCHECK_SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "healthcheck.py"


@pytest.fixture
async def server():
    settings = HealthSettings(enabled=True, host="127.0.0.1", port=0, max_loop_lag_seconds=0.2)
    async with HealthServer(
        settings, Metrics(), lag_interval_seconds=0.02, lag_window_seconds=0.5
    ) as running:
        yield running


@pytest.fixture
async def http(server):
    async with aiohttp.ClientSession(
        base_url=f"http://127.0.0.1:{server.port}", timeout=aiohttp.ClientTimeout(total=5)
    ) as session:
        yield session


async def _get(http: aiohttp.ClientSession, path: str) -> tuple[int, str, str]:
    async with http.get(path) as response:
        return response.status, response.headers["Content-Type"], await response.text()


async def test_healthz_is_ok_while_the_loop_runs(http):
    status, content_type, body = await _get(http, "/healthz")
    assert (status, content_type) == (200, "application/json; charset=utf-8")
    assert '"status": "ok"' in body


async def test_healthz_fails_after_the_loop_was_blocked_then_recovers(server, http):
    time.sleep(0.5)  # noqa: ASYNC251 - what a blocking handler does to every user
    status, _, body = await _get(http, "/healthz")
    assert status == 503
    assert "event loop lag above 0.2 s" in body
    for _ in range(50):  # recovers once the monitor ticks on time again
        await asyncio.sleep(0.05)
        if (await _get(http, "/healthz"))[0] == 200:
            break
    else:
        pytest.fail("/healthz did not recover after the loop was unblocked")


async def test_healthz_fails_when_the_lag_monitor_is_gone(server, http):
    await server.lag_monitor.stop()
    status, _, body = await _get(http, "/healthz")
    assert status == 503 and "monitor stopped" in body


async def test_readiness_flips_with_its_checks(server, http):
    database_up = True

    async def database() -> bool:
        return database_up

    async def model_loaded() -> bool:
        return True

    async def telegram() -> bool:
        raise ConnectionError("not connected yet")

    server.readiness.register("database", database)
    server.readiness.register("model_loaded", model_loaded)
    assert (await _get(http, "/readyz"))[0] == 200

    database_up = False
    status, _, body = await _get(http, "/readyz")
    assert status == 503 and '"failing": ["database"]' in body

    server.readiness.register("telegram", telegram)  # a check that raises counts as failing
    status, _, body = await _get(http, "/readyz")
    assert status == 503 and '"failing": ["database", "telegram"]' in body

    database_up = True
    server.readiness.unregister("telegram")
    status, _, body = await _get(http, "/readyz")
    assert status == 200 and '"checks": ["database", "model_loaded"]' in body


async def test_a_hanging_readiness_check_times_out():
    readiness = Readiness(timeout_seconds=0.05)

    async def hangs() -> bool:
        await asyncio.sleep(10)
        return True

    readiness.register("stuck", hangs)
    started = time.monotonic()
    assert await readiness.evaluate() == {"stuck": False}
    assert time.monotonic() - started < 2


async def test_metrics_show_recorded_values(server, http):
    metrics = server.metrics
    metrics.job_finished("telegram", "done", wait_s=3.0, processing_s=12.0, audio_s=180.0)
    metrics.job_finished("discord", "failed", wait_s=1.0, processing_s=2.0)
    metrics.job_finished("telegram", "cancelled", wait_s=5.0)
    metrics.set_queue_length(4)
    metrics.batch_ran(4)
    metrics.cache(hit=True)
    metrics.cache(hit=True)
    metrics.cache(hit=False)
    metrics.quota_refused("songs_per_day")
    metrics.error("bad_audio")
    status, content_type, text = await _get(http, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain; version=")
    expected = [
        'karaoke_jobs_total{platform="telegram",status="done"} 1.0',
        'karaoke_jobs_total{platform="discord",status="failed"} 1.0',
        'karaoke_jobs_total{platform="telegram",status="cancelled"} 1.0',
        "karaoke_queue_length 4.0",
        "karaoke_job_wait_seconds_count 3.0",
        "karaoke_job_wait_seconds_sum 9.0",
        "karaoke_job_processing_seconds_count 2.0",
        "karaoke_audio_processed_seconds_total 180.0",
        'karaoke_realtime_factor_bucket{le="0.1"} 1.0',  # 12 s for 180 s: 0.067
        "karaoke_realtime_factor_count 1.0",
        'karaoke_batch_size_bucket{le="4.0"} 1.0',
        "karaoke_cache_hits_total 2.0",
        "karaoke_cache_misses_total 1.0",
        'karaoke_quota_refusals_total{reason="songs_per_day"} 1.0',
        'karaoke_errors_total{kind="bad_audio"} 1.0',
    ]
    lines = text.splitlines()
    for line in expected:
        assert line in lines, line
    assert any(line.startswith("karaoke_event_loop_lag_seconds ") for line in lines)
    assert "karaoke_gpu_memory_bytes" not in text  # CPU: absent, not a misleading 0


def test_gpu_memory_is_read_at_scrape_time():
    used = {"allocated": 1.0}
    metrics = Metrics(gpu_memory={"allocated": lambda: used["allocated"]})
    used["allocated"] = 3 * 2**30
    samples = {
        (sample.name, tuple(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
    }
    assert samples[("karaoke_gpu_memory_bytes", (("kind", "allocated"),))] == 3 * 2**30


def test_each_metrics_object_has_its_own_registry():
    first, second = Metrics(), Metrics()  # no "Duplicated timeseries" from a global registry
    first.error("internal")
    assert 'karaoke_errors_total{kind="internal"}' in first.render().decode()
    assert 'karaoke_errors_total{kind="internal"}' not in second.render().decode()


async def test_no_token_in_any_endpoint():
    token = "987654321:AAsecretTokenNeverInMetrics"
    settings = load_settings(environ={"KARAOKE_TELEGRAM_TOKEN": token})
    health = settings.health.model_copy(update={"enabled": True, "port": 0})
    async with HealthServer(health, Metrics()) as server:
        server.metrics.job_finished("telegram", "done", wait_s=1, processing_s=1, audio_s=10)
        server.metrics.error("telegram_api")
        async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as http:
            for path in ("/metrics", "/healthz", "/readyz"):
                status, _, body = await _get(http, path)
                assert status == 200 and token not in body


async def test_a_port_in_use_is_a_typed_error(server):
    taken = HealthSettings(enabled=True, host="127.0.0.1", port=server.port)
    with pytest.raises(HealthServerError) as caught:
        await HealthServer(taken, Metrics()).start()
    assert caught.value.port == server.port
    assert f"127.0.0.1:{server.port}" in str(caught.value)


async def _run_healthcheck(port: int) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HEALTHCHECK_SCRIPT),
        env={"KARAOKE_HEALTH_PORT": str(port), "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), timeout=20)
    return process.returncode, stdout.decode()


async def test_the_docker_healthcheck_script_follows_healthz(server):
    code, output = await _run_healthcheck(server.port)
    assert code == 0, output
    assert f"http://127.0.0.1:{server.port}/healthz: 200" in output

    await server.lag_monitor.stop()  # /healthz now answers 503
    code, output = await _run_healthcheck(server.port)
    assert code == 1 and ": 503 " in output

    port = server.port
    await server.stop()  # nothing listens any more
    code, output = await _run_healthcheck(port)
    assert code == 1 and "refused" in output.lower()
