"""``karaoke-bot worker``: separate songs from the distributed queue on this host.

Start any number of them, on any number of hosts, with the same config file as the
front-ends (``backend.kind = "distributed"``). Each loads the model on its devices
(``pool.devices``) and warms it up before it takes its first song.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import TYPE_CHECKING, Any

from bot.cli import messages
from bot.cli.messages import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:  # pydantic: imported when the command runs, not for --help
    from bot.settings import Settings

logger = logging.getLogger(__name__)


def add_worker_command(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "worker",
        help='separate songs from the distributed queue (backend.kind = "distributed")',
    )
    parser.set_defaults(func=worker_command)


def worker_command(args: argparse.Namespace, settings: Settings) -> int:
    if settings.backend.kind != "distributed":
        messages.error(messages.WORKER_NEEDS_DISTRIBUTED)
        return EXIT_USAGE
    from bot.cli.run import ensure_configured_weights

    ensure_configured_weights(settings)  # the first start fetches them, as run does
    asyncio.run(_work(settings))
    return EXIT_OK


async def _work(settings: Settings) -> None:
    from bot.distributed.queue import make_queue_app
    from bot.distributed.setup import blob_store, shared_cache_limits
    from bot.distributed.worker import SeparationWorker
    from bot.process.app import install_signal_handlers
    from bot.process.backend import build_pool, configure_torch, worker_pool_config

    configure_torch(settings)
    concurrency = settings.queue.worker_concurrency
    pool = build_pool(settings, worker_pool_config(settings))
    stop = asyncio.Event()
    install_signal_handlers(stop)
    await pool.start()  # loads the model and warms it up before the first song
    app = make_queue_app(settings, max_connections=concurrency + 4)
    blobs = blob_store(settings)
    try:
        async with app.open_async():
            worker = SeparationWorker(
                app=app,
                pool=pool,
                blobs=blobs,
                queue=settings.queue,
                tmp_dir=settings.tmp_dir,
                shared_cache=shared_cache_limits(settings),
            )
            await worker.run(stop)
    finally:
        await blobs.close()
        await pool.shutdown(timeout=settings.pool.shutdown_timeout_seconds)
