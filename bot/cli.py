"""The ``karaoke-bot`` command line: one entry point for every job of the bot.

Exit codes: 0 success, 1 a job failed (each failure is one line naming it), 2 usage or
configuration errors.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from separation.errors import SeparationError

from .commands.check import add_check_command
from .commands.models import add_models_command
from .commands.run import add_run_command
from .commands.separate import add_separate_command
from .logging_setup import configure_logging
from .secrets import secret_values
from .settings import ConfigError, Settings, describe_validation_error, load_settings

EXIT_USAGE = 2
logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="karaoke-bot",
        description="Turn any song into a karaoke track (instrumental + vocals) with Demucs.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="config file (default: $KARAOKE_CONFIG, else ./config.toml if "
        "present, else built-in defaults)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_separate_command(subparsers)
    add_run_command(subparsers)
    add_models_command(subparsers)
    add_check_command(subparsers)
    try:
        from .admin_cli import add_admin_commands
    except ImportError:  # the store's commands are optional until storage/ lands
        pass
    else:
        add_admin_commands(subparsers)
    return parser


def resolve_config_path(explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    from_env = os.environ.get("KARAOKE_CONFIG")
    if from_env:
        return Path(from_env)
    default = Path("config.toml")
    return default if default.is_file() else None


def load_cli_settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(resolve_config_path(args.config))
    apply_overrides = getattr(args, "apply_overrides", None)
    if apply_overrides is not None:
        apply_overrides(args, settings)
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_cli_settings(args)
    except ValidationError as exc:
        print(f"karaoke-bot: {describe_validation_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"karaoke-bot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(
        "DEBUG" if args.verbose else settings.general.log_level,
        json_lines=settings.general.log_json,
        secrets=secret_values(settings),
    )
    try:
        return args.func(args, settings)
    except SeparationError as exc:
        print(f"karaoke-bot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("karaoke-bot: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
