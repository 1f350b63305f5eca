"""``karaoke-bot run``: start the enabled chat platforms with the pool and the store.

The adapters, the flow and the pool bring torch, python-telegram-bot and discord.py
with them; they are imported when the bot starts, not whenever the CLI is called.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import TYPE_CHECKING, Any

from bot.cli import messages
from bot.cli.messages import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from bot.process.app import AdapterFactory
    from bot.settings import Settings
    from separation.jobs import SeparationBackend

logger = logging.getLogger(__name__)

EXIT_START_FAILED = EXIT_USAGE


def add_run_command(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "run", help="run the bot (Telegram and/or Discord) until Ctrl-C or SIGTERM"
    )
    parser.set_defaults(func=run_command)


def adapter_factories(settings: Settings) -> list[AdapterFactory]:
    """One factory per enabled platform (each builds its adapter around the flow)."""
    from bot.chat.discord.adapter import DiscordAdapter
    from bot.chat.telegram.adapter import TelegramAdapter

    factories: list[AdapterFactory] = []
    if settings.telegram.enabled:
        factories.append(lambda s, flow: TelegramAdapter(s.telegram, flow))
    if settings.discord.enabled:
        factories.append(DiscordAdapter.from_settings)
    return factories


def start_errors() -> tuple[type[Exception], ...]:
    """Errors that stop the bot from starting; each is reported as one line."""
    from bot.chat.conversation.adapter import StartError  # every adapter's start errors subclass it
    from separation.errors import SeparationError
    from storage.errors import StorageError

    return (StartError, StorageError, SeparationError)


def missing_token(settings: Settings) -> str | None:
    """Why ``run`` cannot start for want of a token, or None: checked before the data
    folder, the database or the model are touched, so a refused start leaves nothing."""
    from bot.settings.loading import PLATFORM_TOKENS, secret_value

    sections = {"telegram": settings.telegram, "discord": settings.discord}
    if not any(section.enabled for section in sections.values()):
        return messages.NO_PLATFORM
    for platform, section in sections.items():
        if section.enabled and not secret_value(section.token):
            return messages.no_token(platform, PLATFORM_TOKENS[platform])
    return None


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Check first (tokens, then weights: fetched once when missing), create after."""
    problem = missing_token(settings)
    if problem is not None:
        messages.error(problem)
        return EXIT_START_FAILED
    factories = adapter_factories(settings)
    try:
        if settings.backend.kind != "distributed":  # a front-end loads no model
            ensure_configured_weights(settings)
        asyncio.run(_serve(settings, factories))
    except start_errors() as exc:
        messages.error(str(exc))
        return EXIT_START_FAILED
    return EXIT_OK


def ensure_configured_weights(settings: Settings) -> None:
    """The configured model's weights on this machine, fetched once when missing and
    allowed (``separation.model.loading.ensure_weights``), before anything is created.

    Raises:
        ModelNotAvailableError: they are missing and cannot be fetched (one line).
    """
    from separation.model.loading import ensure_weights

    model = settings.model
    ensure_weights(model.name, model.repo, allow_download=model.allow_download, progress=True)


async def _serve(settings: Settings, factories: list[AdapterFactory]) -> None:
    from bot.ops.metrics import Metrics
    from bot.process.app import build_app, install_signal_handlers, run_until_stopped

    stop = asyncio.Event()
    install_signal_handlers(stop)
    backend: SeparationBackend
    if settings.backend.kind == "distributed":
        from bot.distributed.setup import distributed_backend

        metrics = Metrics()
        backend = distributed_backend(settings)  # a front-end: no model here
    else:
        from bot.ops.metrics import cuda_memory_readers
        from bot.process.backend import build_pool, configure_torch

        device = configure_torch(settings)
        metrics = Metrics(gpu_memory=cuda_memory_readers(device))
        backend = build_pool(settings, metrics=metrics)
    app = await build_app(settings, backend=backend, adapter_factories=factories, metrics=metrics)
    await run_until_stopped(app, stop, grace_seconds=settings.pool.shutdown_timeout_seconds)
