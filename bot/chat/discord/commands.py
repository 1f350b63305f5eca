"""The slash commands: names, options and descriptions, wired to a handler.

Only the command surface lives here (what Discord shows in the command picker); what a
command does is the adapter's business, which hands it to the chat flow. Keeping the two
apart means the synced payload (``bot.chat.discord.sync``) changes only when this file does.
"""

from __future__ import annotations

from typing import Literal, Protocol

import discord
from discord import app_commands

from bot.links.classify import MAX_LINK_CHARS
from separation.audio.encode import StemMode
from separation.audio.render_options import RenderOptions

FormatChoice = Literal["mp3", "opus", "flac"]
MAX_TEXT_OPTION = 6000
"""The longest text Discord lets a string option carry (a song's LRC fits; longer: a file)."""


class SlashHandler(Protocol):
    """What the commands call (implemented by ``DiscordAdapter``)."""

    async def karaoke(
        self,
        interaction: discord.Interaction,
        file: discord.Attachment | None,
        stems: StemMode,
        output_format: FormatChoice | None,
        controls: RenderOptions | None = None,
        lyrics: discord.Attachment | None = None,
        url: str | None = None,
    ) -> None:
        """A song from ``file`` or ``url``: exactly one of them."""
        ...

    async def video(
        self,
        interaction: discord.Interaction,
        lyrics: discord.Attachment | None,
        text: str | None,
    ) -> None:
        """A karaoke video of the user's latest song, with these lyrics when given."""
        ...

    async def quota(self, interaction: discord.Interaction) -> None: ...

    async def status(self, interaction: discord.Interaction) -> None: ...

    async def cancel(self, interaction: discord.Interaction) -> None: ...

    async def help(self, interaction: discord.Interaction) -> None: ...

    async def admin(self, interaction: discord.Interaction, command: str, args: list[str]) -> None:
        """``command`` is the flow's admin command name: grant, ban, unban or stats."""
        ...

    async def on_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None: ...


def build_command_tree(client: discord.Client, handler: SlashHandler) -> app_commands.CommandTree:
    """A ``CommandTree`` on ``client`` with every command of the bot."""
    tree = app_commands.CommandTree(client)
    tree.error(handler.on_command_error)

    @tree.command(name="karaoke")
    @app_commands.describe(
        file="The song: an audio or video file (or give url)",
        url="Or a link to the song: a page on a music or video site, or a file",
        stems="two: instrumental + vocals (default); four: drums, bass, other, vocals",
        output_format="File format of the results (default: the bot's, usually mp3)",
        key="Semitones up or down, -6 to 6 (pitch only; the tempo stays)",
        tempo="Speed, 0.5 to 1.5 (0.9 is 10% slower; the pitch stays)",
        guide="A quiet guide vocal in the instrumental, -30 to -6 dB",
        lyrics="The lyrics, for a karaoke video: an .lrc or .txt file",
    )
    @app_commands.rename(output_format="format")
    async def karaoke(
        interaction: discord.Interaction,
        file: discord.Attachment | None = None,
        url: app_commands.Range[str, 1, MAX_LINK_CHARS] | None = None,
        stems: StemMode = "two",
        output_format: FormatChoice | None = None,
        key: app_commands.Range[int, -6, 6] = 0,
        tempo: app_commands.Range[float, 0.5, 1.5] = 1.0,
        guide: app_commands.Range[float, -30.0, -6.0] | None = None,
        lyrics: discord.Attachment | None = None,
    ) -> None:
        """Turn a song into a karaoke track (instrumental + vocals)."""
        # Discord enforces the ranges; RenderOptions checks them again all the same.
        controls = RenderOptions(key=key, tempo=tempo, guide_db=guide)
        await handler.karaoke(interaction, file, stems, output_format, controls, lyrics, url)

    _add_video(tree, handler)

    @tree.command(name="quota")
    async def quota(interaction: discord.Interaction) -> None:
        """What you have left today."""
        await handler.quota(interaction)

    @tree.command(name="status")
    async def status(interaction: discord.Interaction) -> None:
        """The queue and your songs in progress."""
        await handler.status(interaction)

    @tree.command(name="cancel")
    async def cancel(interaction: discord.Interaction) -> None:
        """Cancel your song in progress."""
        await handler.cancel(interaction)

    @tree.command(name="help")
    async def help_(interaction: discord.Interaction) -> None:
        """What this bot does."""
        await handler.help(interaction)

    tree.add_command(_admin_group(handler))
    return tree


def _add_video(tree: app_commands.CommandTree, handler: SlashHandler) -> None:
    """``/video [lyrics] [text]``: the latest song's karaoke video."""

    @tree.command(name="video")
    @app_commands.describe(
        lyrics="The lyrics, if I don't have them: an .lrc or .txt file",
        text="Or the lyrics as text (LRC with times, or plain lines)",
    )
    async def video(
        interaction: discord.Interaction,
        lyrics: discord.Attachment | None = None,
        text: app_commands.Range[str, 1, MAX_TEXT_OPTION] | None = None,
    ) -> None:
        """A karaoke video of your latest song: the words on screen, in time."""
        await handler.video(interaction, lyrics, text)


def _admin_group(handler: SlashHandler) -> app_commands.Group:
    admin = app_commands.Group(name="admin", description="For the bot's admins only")

    @admin.command(name="grant")
    @app_commands.describe(
        user="PLATFORM:ID, e.g. discord:123456789",
        songs="Songs per day",
        minutes="Minutes of audio per day (default: unchanged)",
    )
    async def grant(
        interaction: discord.Interaction,
        user: str,
        songs: app_commands.Range[int, 0, 100_000],
        minutes: app_commands.Range[float, 0, 1_000_000] | None = None,
    ) -> None:
        """Raise or lower a user's daily limits."""
        args = [user, str(songs)] + ([] if minutes is None else [str(minutes)])
        await handler.admin(interaction, "grant", args)

    @admin.command(name="ban")
    @app_commands.describe(user="PLATFORM:ID, e.g. discord:123456789")
    async def ban(interaction: discord.Interaction, user: str) -> None:
        """Stop a user from using the bot."""
        await handler.admin(interaction, "ban", [user])

    @admin.command(name="unban")
    @app_commands.describe(user="PLATFORM:ID, e.g. discord:123456789")
    async def unban(interaction: discord.Interaction, user: str) -> None:
        """Let a banned user use the bot again."""
        await handler.admin(interaction, "unban", [user])

    @admin.command(name="stats")
    async def stats(interaction: discord.Interaction) -> None:
        """Jobs, users and cache statistics."""
        await handler.admin(interaction, "stats", [])

    return admin
