"""Karaoke controls on Discord: buttons under the instrumental that survive restarts.

Each button is a ``discord.ui.DynamicItem`` whose custom id is the control's data
(``bot.chat.controls``: the job and the target key, tempo and guide). The client
recognises any button with such an id, from any message it ever sent, without a view
kept in memory: a press after a restart works. Who may press is decided by the chat
flow (the song's owner only), not here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import discord

from bot.chat.controls import PREFIX, Button

ControlPressed = Callable[[discord.Interaction, str], None]
"""Told of a press once it is acknowledged: the interaction and the button's data."""

_TEMPLATE = rf"{PREFIX}:\d+:-?\d+:\d+:(?:-?\d+(?:\.\d+)?|-)"


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


def control_view(rows: list[list[Button]] | None) -> discord.ui.View | None:
    """The buttons as a view to attach to a message (None without controls)."""
    if not rows:
        return None
    view = discord.ui.View(timeout=None)
    for index, row in enumerate(rows):
        for button in row:
            view.add_item(ControlButton(button.data, button.label, row=index))
    return view
