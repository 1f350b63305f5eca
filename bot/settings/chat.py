"""``[telegram]``, ``[discord]`` and ``[rate_limit]``: the chat platforms and how fast
one user may talk to the bot on any of them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from bot.settings.base import Section


class PlatformSection(Section):
    """What every chat platform's table shares: ``enabled`` follows the token unless
    the config says otherwise (each platform redeclares both with its own description)."""

    enabled: bool | None = None
    """Start the platform's bot; unset: started when its token is set."""
    token: SecretStr | None = None
    """The platform's bot token."""

    @model_validator(mode="after")
    def _enabled_by_its_token(self) -> PlatformSection:
        """An unset ``enabled`` becomes whether a token is set; an explicit value stays."""
        if self.enabled is None:
            self.enabled = bool(self.token and self.token.get_secret_value())
        return self


class TelegramSettings(PlatformSection):
    """The Telegram bot (python-telegram-bot): token, admins, Bot API server, webhook."""

    enabled: bool | None = None
    """Start the Telegram bot; unset: started when its token is set (so
    ``KARAOKE_TELEGRAM_TOKEN=... karaoke-bot run`` is a whole deployment)."""
    token: SecretStr | None = None
    """Better given as KARAOKE_TELEGRAM_TOKEN than written here."""
    admin_ids: list[int] = Field(default_factory=list)
    """Telegram user ids allowed to use /grant, /ban, /unban and /stats."""
    base_url: str | None = None
    """A local Bot API server, e.g. "http://127.0.0.1:8081/bot" (default: Telegram's)."""
    base_file_url: str | None = None
    """The file URL of that local Bot API server, e.g. "http://127.0.0.1:8081/file/bot"."""
    local_mode: bool = False
    """With a local Bot API server: files are read from its disk, no 20 MB download limit,
    uploads up to 2000 MB."""
    mode: Literal["polling", "webhook"] = "polling"
    """polling (works anywhere) or webhook (needs a public HTTPS URL)."""
    webhook_url: str | None = None
    """Public HTTPS URL Telegram posts updates to (webhook mode)."""
    webhook_listen: str = "127.0.0.1"
    """Address the webhook server listens on (put a TLS proxy in front)."""
    webhook_port: int = Field(default=8443, gt=0, lt=65536)
    """Port the webhook server listens on."""
    webhook_secret: SecretStr | None = None
    """Better given as KARAOKE_TELEGRAM_WEBHOOK_SECRET than written here."""


class DiscordSettings(PlatformSection):
    """The Discord bot (discord.py): token, admins, song channels, slash commands."""

    enabled: bool | None = None
    """Start the Discord bot; unset: started when its token is set (KARAOKE_DISCORD_TOKEN)."""
    token: SecretStr | None = None
    """Better given as KARAOKE_DISCORD_TOKEN than written here."""
    admin_ids: list[int] = Field(default_factory=list)
    """Discord user ids allowed to use /admin (grant, ban, unban, stats)."""
    admin_role_ids: list[int] = Field(default_factory=list)
    """Members with any of these roles may use /admin too."""
    song_channel_ids: list[int] = Field(default_factory=list)
    """Channels where any audio or video attachment starts a job (needs the intent below)."""
    test_guild_id: int | None = None
    """Sync slash commands to this one server (instant) instead of globally."""
    message_content_intent: bool = True
    """Ask for the privileged message-content intent (enable it in the Developer Portal)."""
    interaction_token_seconds: float = Field(default=900.0, gt=0)
    """How long Discord lets a bot answer a slash command (15 minutes); later results go to
    the channel as a message that mentions the user."""


class RateLimitSettings(Section):
    """Per-user rate limits on every platform (``bot.chat.conversation.ratelimit``)."""

    requests_per_minute: float = Field(default=20.0, gt=0)
    """Messages and commands one user may send per minute, on average."""
    burst: int = Field(default=5, ge=1)
    """How many may come at once before the average applies."""
    renders_per_minute: float = Field(default=6.0, gt=0)
    """Karaoke-control presses (key, tempo, guide vocal) one user may make per minute, on
    average: each costs seconds of ffmpeg, not the song quota."""
    render_burst: int = Field(default=10, ge=1)
    """How many karaoke-control presses may come at once before the average applies."""
    render_audio_minutes_per_day: float = Field(default=60.0, gt=0)
    """Minutes of audio one user may have re-rendered in any 24 hours (a render of a
    4-minute song costs 4; the same settings again cost nothing); admins are exempt.
    Counted in memory: a restart forgets it (``bot.chat.conversation.render_allowance``)."""
