"""What an operator sees of a fleet: `check`, /readyz's checks and the queue's metrics."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from bot.cli.check import check_fleet
from bot.distributed.errors import BlobStoreError
from bot.ops.metrics import Metrics
from separation.audio.encode import EncodingSpec
from separation.jobs import SeparationRequest
from tests.support.fleet import Fleet

pytestmark = pytest.mark.slow


def test_check_reports_the_queue_the_blob_store_and_live_workers(fleet: Fleet):
    worker = fleet.start_worker()
    fleet.wait_until_ready(worker)
    findings = {f.subject: f for f in check_fleet(fleet.settings("checker"))}
    assert findings[f"queue {fleet.queue!r}"].level == "OK"
    blobs = next(f for subject, f in findings.items() if subject.startswith("blob store folder"))
    assert blobs.level == "OK" and blobs.message == "can write and delete"
    assert findings["workers"].level == "OK" and findings["workers"].message.endswith("alive")


def test_check_names_an_unreachable_database_in_one_fatal_line(fleet: Fleet):
    fleet.database_url = "postgresql+asyncpg://postgres:hunter2@127.0.0.1:1/nowhere"
    [finding] = check_fleet(fleet.settings("lost"))
    assert finding.level == "FATAL" and finding.subject == f"queue {fleet.queue!r}"
    assert "hunter2" not in finding.line() and "\n" not in finding.line()


async def test_readiness_fails_when_the_blob_store_cannot_be_written(fleet: Fleet):
    front = await fleet.frontend()
    checks = front.readiness_checks()
    assert await checks["queue"]() is True
    assert await checks["blob_store"]() is True
    # As if the shared mount were replaced by something else (root ignores modes here).
    shutil.rmtree(fleet.blobs)
    fleet.blobs.write_text("not a folder")
    with pytest.raises(BlobStoreError):
        await checks["blob_store"]()


async def test_queue_depth_reaches_the_metrics(fleet: Fleet, song):
    front = await fleet.frontend()
    for name in ("m1", "m2"):
        await front.submit(
            SeparationRequest(
                user_ref="telegram:5", input_path=song(4, name), encoding=EncodingSpec("wav")
            )
        )
    depth = await front.queue_depth()
    assert depth == {"todo": 2}
    metrics = Metrics()
    metrics.set_queue_jobs(depth)
    metrics.set_workers_alive(0)
    text = metrics.render().decode()
    assert 'karaoke_queue_jobs{state="todo"} 2.0' in text
    assert 'karaoke_queue_jobs{state="doing"} 0.0' in text
    assert "karaoke_workers_alive 0.0" in text


def test_a_front_end_never_imports_torch():
    # A front-end host needs no GPU stack: the distributed backend, the app and both
    # adapters load without torch (the worker command imports it when it starts).
    probe = (
        "import sys, bot.process.app, bot.distributed.setup, bot.chat.telegram.adapter, "
        "bot.chat.discord.adapter, bot.cli.worker; print('torch' in sys.modules)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert completed.stdout.strip() == "False"
