"""What admins read: the admin commands' answers and the statistics."""

from __future__ import annotations

from bot.chat.conversation.messages.numbers import (
    count,
)
from bot.chat.conversation.user_text import escaped, excerpt
from storage.errors import (
    StorageError,
)
from storage.records import Stats

NOT_ADMIN = "That command is for the bot's admins."
ADMIN_USAGE = (
    "Usage: /grant PLATFORM:ID SONGS [MINUTES], /ban PLATFORM:ID, /unban PLATFORM:ID, /stats"
)


def admin_granted(ref: str, songs: int | None, minutes: float | None) -> str:
    return f"{ref}: songs/day {songs}, minutes/day {minutes}"


def admin_banned(ref: str, banned: bool) -> str:
    return f"{ref} is {'banned' if banned else 'no longer banned'}."


_MAX_REASON_CHARS = 160
"""An admin command's refusal quotes what was typed: cut to this much."""


def admin_bad_arguments(reason: object) -> str:
    """An admin command's arguments did not parse: the reason (which quotes them, so it
    is cut short), then how to use it."""
    return f"{excerpt(reason, max_chars=_MAX_REASON_CHARS)}. {ADMIN_USAGE}"


def admin_refused(error: StorageError) -> str:
    """An admin command the store refused (an unknown user, say): the store's sentence,
    cut short (it quotes what the admin typed)."""
    return excerpt(error, max_chars=_MAX_REASON_CHARS)


def describe_stats(stats: Stats) -> str:
    """A few lines of statistics (for admins, CLI or chat)."""
    by_status = ", ".join(f"{status} {jobs}" for status, jobs in stats.jobs_by_status.items())
    done = stats.jobs_by_status.get("done", 0)
    if stats.cache_hit_rate is None:
        hits = "no finished jobs yet"
    else:
        hits = f"{stats.cache_hits} of {done} finished jobs ({stats.cache_hit_rate:.0%})"
    lines = [
        f"users            {stats.users}",
        f"jobs             {by_status}",
        f"audio processed  {stats.audio_hours_processed:.2f} h",
        f"cache hits       {hits}",
        "top users" if stats.top_users else "top users        none yet",
    ]
    for rank, user in enumerate(stats.top_users, start=1):
        # Escaped: a display name with newlines or terminal escapes could forge lines.
        name = f" ({escaped(user.display_name)})" if user.display_name else ""
        lines.append(
            f"  {rank}. {user.platform}:{escaped(user.platform_user_id)}{name}: "
            f"{count(user.jobs_done, 'song')}, {user.audio_minutes:.1f} min"
        )
    return "\n".join(lines)
