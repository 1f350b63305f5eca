"""``karaoke-bot check``: the command, and every check in the order an operator fixes things."""

from __future__ import annotations

import argparse

from bot.cli.check.findings import Finding
from bot.cli.check.machine import (
    check_cache,
    check_data_dir,
    check_device,
    check_ffmpeg,
    check_header_reader,
    check_model,
)
from bot.cli.check.services import check_database, check_fleet, check_platforms
from bot.cli.check.settings_view import masked_settings_lines
from bot.ops.secrets import (
    scrub,
    secret_values,
)
from bot.process.wiring import audio_limits
from bot.settings import Settings, resolve_config_path


def check_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the masked settings and every finding; 1 when any finding is fatal."""

    config_path = resolve_config_path(args.config)
    secrets = secret_values(settings)
    print(f"config: {config_path or 'built-in defaults'} (environment overrides applied)")
    print()
    for line in masked_settings_lines(settings):
        print(scrub(line, secrets))
    print()
    findings = run_checks(settings)
    for finding in findings:
        print(scrub(finding.line(), secrets))
    print()
    fatal = sum(finding.level == "FATAL" for finding in findings)
    warnings = sum(finding.level == "WARN" for finding in findings)
    if fatal:
        print(f"NOT READY: {fatal} problem(s) must be fixed before the bot can run")
        return 1
    print("ready to run" + (f" ({warnings} warning(s) above)" if warnings else ""))
    return 0


def run_checks(settings: Settings) -> list[Finding]:
    """Every check, in the order an operator would fix things."""
    return [
        *check_platforms(settings),
        check_ffmpeg(settings.general.ffmpeg_path),
        check_header_reader(audio_limits(settings).header_reader_python),
        check_model(settings),
        check_device(settings),
        check_data_dir(settings.general.data_dir),
        check_cache(settings),
        check_database(settings),
        *check_fleet(settings),
    ]


# --- settings, masked -----------------------------------------------------------------
