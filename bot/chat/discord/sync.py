"""Registering the slash commands with Discord, only when they changed.

Syncing rewrites the application's commands on Discord's side and is rate-limited (a few
per minute, 200 creations a day), and global changes take a while to reach clients. So
the command tree's JSON payload is hashed and kept in the data folder; a start with the
same commands does not sync again. With a test server configured the commands go to that
server only, where changes show up at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import discord
from discord import app_commands

from storage.files import make_private_dirs

logger = logging.getLogger(__name__)

STATE_FILE_NAME = "command-sync.json"


def commands_payload(
    tree: app_commands.CommandTree, guild: discord.abc.Snowflake | None
) -> list[dict[str, Any]]:
    """What ``tree.sync(guild=guild)`` would send (without translations)."""
    return [command.to_dict(tree) for command in tree.get_commands(guild=guild)]


def payload_hash(payload: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


async def sync_if_changed(
    tree: app_commands.CommandTree,
    *,
    application_id: int,
    guild_id: int | None,
    state_dir: Path,
) -> bool:
    """Sync the commands to ``guild_id`` (or globally) unless this exact set was synced.

    Returns:
        True when commands were sent to Discord.

    Raises:
        discord.HTTPException: Discord refused the sync (e.g. 403 ``Missing Access``:
            the bot was invited without the ``applications.commands`` scope). The hash
            is not stored then, so the next start tries again.
    """
    guild = discord.Object(guild_id) if guild_id is not None else None
    if guild is not None:
        tree.copy_global_to(guild=guild)
    scope = f"{application_id}:{guild_id if guild_id is not None else 'global'}"
    digest = payload_hash(commands_payload(tree, guild))
    state_file = state_dir / STATE_FILE_NAME
    synced = _read_state(state_file)
    if synced.get(scope) == digest:
        logger.info("discord: slash commands unchanged (%s), not syncing", scope)
        return False
    await tree.sync(guild=guild)
    synced[scope] = digest
    _write_state(state_file, synced)
    logger.info("discord: slash commands synced (%s)", scope)
    return True


def _read_state(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:  # a damaged file only costs one extra sync
        logger.warning("discord: ignoring unreadable %s: %s", path, exc)
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_state(path: Path, synced: dict[str, str]) -> None:
    make_private_dirs(path.parent)  # usually the data folder: 0700 like all the bot's
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(synced, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(temporary, path)
