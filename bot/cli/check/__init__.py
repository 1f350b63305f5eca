"""``karaoke-bot check``: is this configuration ready to run, without starting anything?

An operator deploying the bot wants every problem at once, each on one line, before the
bot is started and fails on the first: a missing token, no ffmpeg, weights not baked
into the image, a data volume mounted read-only, a database the code cannot read. Each
check says OK, WARN (the bot runs, but look at this) or FATAL (it will not run), and the
exit code is 1 when anything is fatal, so a deploy script can stop on it.

The effective settings are printed first with every secret masked: values typed
``SecretStr``, fields named like a token, password or secret, passwords inside URLs,
and any secret value that shows up inside another value (a webhook path that is the
bot token). Nothing here writes except a probe file in the data directory, removed at
once.
"""

from bot.cli.check.command import check_command, run_checks
from bot.cli.check.findings import Finding, Level
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
from bot.ops.secrets import MASK, mask_url_password

__all__ = [
    "MASK",
    "Finding",
    "Level",
    "check_cache",
    "check_command",
    "check_data_dir",
    "check_database",
    "check_device",
    "check_ffmpeg",
    "check_fleet",
    "check_header_reader",
    "check_model",
    "check_platforms",
    "mask_url_password",
    "masked_settings_lines",
    "run_checks",
]
