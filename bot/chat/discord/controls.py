"""Karaoke controls on Discord: buttons under the instrumental that survive restarts.

Each button is a ``discord.ui.DynamicItem`` whose custom id is the control's data
(``bot.chat.conversation.controls``: the job's control token and the target key, tempo and guide).
The client recognises any button with such an id, from any message it ever sent, without
a view kept in memory: a press after a restart works. Its template takes anything with
our prefix, so a button of an older format is still acknowledged and answered ("send
the song again") by the one parser of control data, ``ControlState.decode``. Who may
press is decided by the chat flow (the song's owner only), not here.

discord.py drops a component interaction that no item matches without answering it,
and the user's client then shows "This interaction failed": :func:`acknowledge_unknown`
answers those (issue 20).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import discord

from bot.chat.conversation.controls import PREFIX, Button

logger = logging.getLogger(__name__)

ControlPressed = Callable[[discord.Interaction, str], None]
"""Told of a press once it is acknowledged: the interaction and the button's data."""

_TEMPLATE = rf"{PREFIX}:.{{1,96}}"
"""Our prefix and up to Discord's 100 characters of custom id; the rest is checked by
``ControlState.decode``."""


class ControlButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=_TEMPLATE):
    """One karaoke-control button."""

    def __init__(self, data: str, label: str = "", row: int | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=label or "\N{MUSICAL NOTE}",
                custom_id=data,
                style=discord.ButtonStyle.secondary,
                row=row,
            )
        )
        self.data = data

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: Any
    ) -> ControlButton:
        label = getattr(item, "label", None) or ""
        return cls(str(getattr(item, "custom_id", "")), label)

    async def callback(self, interaction: discord.Interaction) -> None:
        """Acknowledge at once (no visible change), then hand the press to the adapter."""
        await interaction.response.defer()
        pressed: ControlPressed | None = getattr(interaction.client, "karaoke_pressed", None)
        if pressed is not None:
            pressed(interaction, self.data)


async def acknowledge_unknown(interaction: discord.Interaction) -> None:
    """Answer a component interaction no control takes (a button of no version of this
    bot, or an id its message does not carry), so the client stops waiting; nothing is
    shown."""
    if interaction.type is not discord.InteractionType.component:
        return
    data: dict[str, Any] = dict(interaction.data or {})
    custom_id = str(data.get("custom_id", ""))
    if ControlButton.__discord_ui_compiled_template__.fullmatch(custom_id) and _carries(
        interaction.message, custom_id
    ):
        return  # discord.py hands it to a ControlButton, which answers it
    if not interaction.response.is_done():
        logger.info("discord: unknown component %r acknowledged", custom_id[:100])
        await interaction.response.defer()


def _carries(message: discord.Message | None, custom_id: str) -> bool:
    """Whether ``message`` has a component with ``custom_id`` (discord.py dispatches a
    dynamic item only then)."""
    rows = message.components if message is not None else []
    return any(
        getattr(child, "custom_id", None) == custom_id
        for row in rows
        for child in getattr(row, "children", [row])
    )


def control_view(rows: list[list[Button]] | None) -> discord.ui.View | None:
    """The buttons as a view to attach to a message (None without controls)."""
    if not rows:
        return None
    view = discord.ui.View(timeout=None)
    for index, row in enumerate(rows):
        for button in row:
            view.add_item(ControlButton(button.data, button.label, row=index))
    return view


def with_view(view: discord.ui.View | None) -> dict[str, Any]:
    """``view`` as an option of discord.py's send (which takes no ``view=None``)."""
    return {} if view is None else {"view": view}
