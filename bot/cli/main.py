"""The ``karaoke-bot`` command line: one entry point for every job of the bot.

Exit codes: 0 success, 1 a job failed (each failure is one line naming it), 2 usage,
configuration or environment errors (a bad option or config file, no CUDA, no weights,
a database that cannot be opened). Every problem is one line, ``karaoke-bot: error: ...``.

Only what every command needs is imported here: ``--help`` and a usage error must answer
at once (issue 23: they spent 0.9 s importing SQLAlchemy, Alembic, numpy and pydantic),
and the store's commands must not pay seconds for torch. So the parser is built from
light modules, the settings (pydantic) are loaded once the arguments are known to be
good, and each command imports what it runs on in its own function.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from bot.cli import messages
from bot.cli.admin import add_admin_commands
from bot.cli.messages import EXIT_INTERRUPTED, EXIT_USAGE, UsageError
from bot.cli.models import add_models_command
from bot.cli.run import add_run_command
from bot.cli.separate import add_separate_command
from bot.cli.worker import add_worker_command
from separation.errors import SeparationError

if TYPE_CHECKING:
    from bot.settings import Settings

logger = logging.getLogger(__name__)

SYNOPSIS = """\
commands:
  karaoke-bot run                       the bot: enabled platforms, pool and store
  karaoke-bot worker                    separate songs from the distributed queue
  karaoke-bot check                     validate config, tokens, ffmpeg, weights, device, DB
  karaoke-bot separate INPUT... [-o OUTDIR] [--model NAME] [--model-repo DIR] ...
  karaoke-bot models list [--repo DIR] | download NAME | make-random NAME --repo DIR
  karaoke-bot db upgrade
  karaoke-bot users show|ban|unban|admin|unadmin PLATFORM:ID
  karaoke-bot users grant PLATFORM:ID [--songs N] [--minutes M] [--max-song-minutes M]
                                      [--concurrent N] [--reset]
  karaoke-bot stats [--top N]

--config and -v may come before or after the command; `karaoke-bot COMMAND --help` tells
more about each.
"""


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line, ``karaoke-bot: error: ...``, like every other problem.

    argparse would print the command's whole usage block first (seven lines for
    ``separate``) and name the subcommand's parser (``karaoke-bot users grant: error:``);
    the one line instead ends by naming the ``--help`` of the command that refused, where
    the usage is. Subparsers are made of the same class, so this holds at every level.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, messages.usage_error(message, self.prog) + "\n")


def _add_global_options(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    """``--config`` and ``-v``, accepted before and after the command.

    Below the top level the defaults are SUPPRESS: a subcommand's parser then sets these
    only when they are typed after it, and leaves a value typed before it alone.
    """
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        default=None if top_level else argparse.SUPPRESS,
        help="config file (default: $KARAOKE_CONFIG, else ./config.toml if "
        "present, else built-in defaults)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=False if top_level else argparse.SUPPRESS,
        help="debug logging",
    )


def _subcommand_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in dict.fromkeys(action.choices.values()):
                yield subparser
                yield from _subcommand_parsers(subparser)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=messages.PROG,
        description="Turn any song into a karaoke track (instrumental + vocals) with Demucs.",
        epilog=SYNOPSIS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_global_options(parser, top_level=True)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_separate_command(subparsers)
    add_run_command(subparsers)
    add_worker_command(subparsers)
    add_models_command(subparsers)
    _add_check_command(subparsers)
    add_admin_commands(subparsers)
    for subparser in _subcommand_parsers(parser):
        _add_global_options(subparser, top_level=False)
        # The deepest command typed sets it last: a leftover argument is its to refuse.
        subparser.set_defaults(command_parser=subparser)
    return parser


def parse_arguments(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse, letting the command that was typed refuse an argument none of them knows.

    ``karaoke-bot db upgrade --x`` is then answered with ``see `karaoke-bot db upgrade
    --help```, where ``--x`` would be found missing, not with the top level's help.
    """
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        refusing: argparse.ArgumentParser = getattr(args, "command_parser", parser)
        refusing.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def _add_check_command(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Registered here: ``bot.cli.check`` imports every check's dependencies."""
    parser = subparsers.add_parser(
        "check",
        help="validate the configuration and environment without starting the bot",
        description="Prints the effective settings (secrets masked), then one OK/WARN/FATAL "
        "line per check; exits 1 when anything is fatal.",
    )
    parser.set_defaults(func=_check_command)


def _check_command(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.check import check_command

    return check_command(args, settings)


def load_cli_settings(args: argparse.Namespace) -> Settings:
    """The config file's settings with the command's flags applied.

    Raises:
        ConfigError: the file is missing or invalid.
        UsageError: a flag's value is invalid (named by the flag).
    """
    from bot.settings import load_settings, resolve_config_path

    settings = load_settings(resolve_config_path(args.config))
    apply_overrides = getattr(args, "apply_overrides", None)
    if apply_overrides is not None:
        apply_overrides(args, settings)
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_arguments(parser, argv)
    from bot.ops.logging_setup import configure_logging  # pydantic: once the args are good
    from bot.ops.secrets import secret_values
    from bot.settings import ConfigError

    try:
        settings = load_cli_settings(args)
    except (ConfigError, UsageError) as exc:
        messages.error(str(exc))
        return EXIT_USAGE
    configure_logging(
        "DEBUG" if args.verbose else settings.general.log_level,
        json_lines=settings.general.log_json,
        secrets=secret_values(settings),
    )
    command: Callable[[argparse.Namespace, Settings], int] = args.func  # set by each parser
    try:
        code = command(args, settings)
    except UsageError as exc:
        messages.error(str(exc))
        return EXIT_USAGE
    except SeparationError as exc:
        # Per-input failures are reported by the command itself; what reaches here
        # stopped it before any job ran: no ffmpeg, no CUDA, no weights.
        messages.error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        messages.error(messages.INTERRUPTED)
        return EXIT_INTERRUPTED
    if argv is None and getattr(args, "exit_when_done", False):
        exit_now(code)
    return code


def exit_now(code: int) -> NoReturn:
    """End the process at once with ``code``, once everything it wrote is flushed.

    For a command whose work is over when it returns (``separate``: outputs written and
    closed, temporary folders removed): the interpreter's own shutdown with torch
    imported takes about 0.45 s on the 2-core machine (measured: ``import torch`` alone,
    then exit), a second a user waits for nothing (issue 26). Only a process started
    from the command line ends this way (``main()`` without ``argv``); a caller that
    passes ``argv`` (the tests) gets the code back.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader gone, or a closed stream
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
