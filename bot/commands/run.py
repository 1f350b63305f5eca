"""``karaoke-bot run``: start the enabled chat platforms with the pool and the store."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from typing import Any

from separation.errors import SeparationError
from storage.errors import StorageError

from ..app import StartError, build_app, install_signal_handlers, run_until_stopped
from ..discord_adapter import DiscordAdapter, DiscordStartError
from ..flow import ChatFlow
from ..metrics import Metrics, cuda_memory_readers
from ..settings import Settings
from ..telegram_adapter import TelegramAdapter, TelegramStartError
from ..wiring import build_pool, configure_torch

logger = logging.getLogger(__name__)

EXIT_START_FAILED = 2
AdapterFactory = Callable[[Settings, ChatFlow], Any]


def add_run_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="run the bot (Telegram and/or Discord) until Ctrl-C or SIGTERM"
    )
    parser.set_defaults(func=run_command)


def adapter_factories(settings: Settings) -> list[AdapterFactory]:
    """One factory per enabled platform (each builds its adapter around the flow)."""
    factories: list[AdapterFactory] = []
    if settings.telegram.enabled:
        factories.append(lambda s, flow: TelegramAdapter(s.telegram, flow))
    if settings.discord.enabled:
        factories.append(DiscordAdapter.from_settings)
    return factories


# Errors that stop the bot from starting; each is reported as one line.
START_ERRORS = (StartError, TelegramStartError, DiscordStartError, StorageError, SeparationError)


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    factories = adapter_factories(settings)
    if not factories:
        print(
            "karaoke-bot: no chat platform is enabled: set telegram.enabled = true "
            "(or discord.enabled) in the config",
            file=sys.stderr,
        )
        return EXIT_START_FAILED
    try:
        asyncio.run(_serve(settings, factories))
    except START_ERRORS as exc:
        print(f"karaoke-bot: {exc}", file=sys.stderr)
        return EXIT_START_FAILED
    return 0


async def _serve(settings: Settings, factories: list[AdapterFactory]) -> None:
    device = configure_torch(settings)
    stop = asyncio.Event()
    install_signal_handlers(stop)
    metrics = Metrics(gpu_memory=cuda_memory_readers(device))
    app = await build_app(
        settings,
        backend=build_pool(settings, metrics=metrics),
        adapter_factories=factories,
        metrics=metrics,
    )
    await run_until_stopped(app, stop, grace_seconds=settings.pool.shutdown_timeout_seconds)
