"""Operator commands: ``users``, ``stats`` and ``db``, run against the bot's own store.

``bot.cli.main`` owns the top-level parser and calls :func:`add_admin_commands` on its
subparsers; each command's ``func(args, settings)`` prints a short report and returns
an exit code. Anything the store refuses (an unknown user, a negative grant, a file
that is not a database, a read-only data directory) becomes one line on stderr, never a
traceback: exit 2 for a malformed command or a store that cannot be opened, 1 for a
user that does not exist. A command that only reads (``users show``, ``stats``, and
``unban``/``unadmin``, which need a user that exists) creates nothing where there is no
database yet: it says so in one line (``stats``: exit 0, there are no songs yet, which
is a true answer for a script watching a fresh deployment; ``users``: exit 1, the user
does not exist, as in a database without them). ``grant``, ``ban`` and ``admin`` create
a user not seen yet, so an operator can pre-grant a friend or pre-ban an abuser.

Nothing here imports torch, and the store (SQLAlchemy, Alembic) is imported by the
command that opens it, not when the parser is built: ``karaoke-bot --help`` must not
wait for it.

    karaoke-bot users show telegram:12345
    karaoke-bot users grant telegram:12345 --songs 20 --minutes 120
    karaoke-bot users ban telegram:12345
    karaoke-bot stats
    karaoke-bot db upgrade
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli import messages
from bot.cli.messages import EXIT_FAILED, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from bot.settings import Settings
    from storage import QuotaLimits, QuotaStatus, Store, UserRecord


def add_admin_commands(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Register ``users``, ``stats`` and ``db`` on the top-level command parser."""
    users = subparsers.add_parser("users", help="show and manage users")
    users_commands = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)

    show = users_commands.add_parser("show", help="a user's flags, limits and usage")
    _add_user_argument(show)
    show.set_defaults(func=users_show)

    grant = users_commands.add_parser(
        "grant",
        help="override a user's limits (unset limits keep the platform default); "
        "a user not seen yet is created",
    )
    _add_user_argument(grant)
    grant.add_argument("--songs", type=_whole_number(0), help="songs per rolling 24 h")
    grant.add_argument("--minutes", type=_number(0), help="audio minutes per rolling 24 h")
    grant.add_argument("--max-song-minutes", type=_number(0, strict=True), help="longest song")
    grant.add_argument("--concurrent", type=_whole_number(1), help="jobs at the same time")
    grant.add_argument(
        "--reset", action="store_true", help="drop all overrides first (back to the defaults)"
    )
    grant.set_defaults(func=users_grant)

    for name, command, summary in (
        ("ban", users_ban, "refuse all new jobs from a user (created if not seen yet)"),
        ("unban", users_unban, "lift a ban"),
        ("admin", users_admin, "make a user an admin, no quota limits (created if not seen yet)"),
        ("unadmin", users_unadmin, "take admin rights away"),
    ):
        flag = users_commands.add_parser(name, help=summary)
        _add_user_argument(flag)
        flag.set_defaults(func=command)

    stats = subparsers.add_parser("stats", help="jobs, audio processed, cache hits, top users")
    stats.add_argument("--top", type=_whole_number(1), default=5, help="how many top users")
    stats.set_defaults(func=show_stats)

    db = subparsers.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply pending schema migrations")
    upgrade.set_defaults(func=db_upgrade)


def users_show(args: argparse.Namespace, settings: Settings) -> int:
    """Print a user's flags, limits, usage in the last 24 h and active jobs."""
    if (refused := _refuse_without_database(args, settings)) is not None:
        return refused

    async def show(store: Store) -> None:
        user = await store.users.find_chat_user(args.user)
        status = await store.quotas.status(
            user, settings.quota.for_platform(user.platform).as_limits()
        )
        active = await store.jobs.active(user)
        print(describe_user(user, status))
        jobs = ", ".join(f"#{job.id} {job.status}" for job in active) or "none"
        print(f"  active jobs  {jobs}")

    return _run(settings, show)


def users_grant(args: argparse.Namespace, settings: Settings) -> int:
    """Override some of a user's limits and print the result."""
    overrides = (args.songs, args.minutes, args.max_song_minutes, args.concurrent)
    if not args.reset and all(value is None for value in overrides):
        return _fail(messages.NOTHING_TO_GRANT, EXIT_USAGE)

    async def grant(store: Store) -> None:
        user = await store.users.find_or_create(args.user)
        if args.reset:
            user = await store.users.reset_limits(user)
        user = await store.users.grant(
            user,
            songs_per_day=args.songs,
            audio_minutes_per_day=args.minutes,
            max_song_minutes=args.max_song_minutes,
            max_concurrent_jobs=args.concurrent,
        )
        status = await store.quotas.status(
            user, settings.quota.for_platform(user.platform).as_limits()
        )
        print(describe_user(user, status))

    return _run(settings, grant)


def users_ban(args: argparse.Namespace, settings: Settings) -> int:
    """Ban a user (created if not seen yet): new jobs are refused; running ones go on."""
    return _update_user(
        args, settings, lambda store, user: store.users.set_banned(user, True), create=True
    )


def users_unban(args: argparse.Namespace, settings: Settings) -> int:
    """Lift a ban."""
    return _update_user(args, settings, lambda store, user: store.users.set_banned(user, False))


def users_admin(args: argparse.Namespace, settings: Settings) -> int:
    """Make a user (created if not seen yet) an admin: no quota limits apply to them."""
    return _update_user(
        args, settings, lambda store, user: store.users.set_admin(user, True), create=True
    )


def users_unadmin(args: argparse.Namespace, settings: Settings) -> int:
    """Take admin rights away."""
    return _update_user(args, settings, lambda store, user: store.users.set_admin(user, False))


def show_stats(args: argparse.Namespace, settings: Settings) -> int:
    """Print jobs per status, audio hours processed, the cache hit rate and top users."""
    if (missing := missing_database(settings)) is not None:
        print(messages.no_database_yet(missing))
        return EXIT_OK

    from bot.chat.conversation.messages import describe_stats

    async def report(store: Store) -> None:
        print(describe_stats(await store.stats.collect(top=args.top)))

    return _run(settings, report)


def db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    """Apply pending migrations and say which revision the database is at."""

    async def upgrade(store: Store) -> None:
        before, after = await store.upgrade_schema()
        if before == after:
            print(f"database {store.database_url} is up to date (revision {after})")
        else:
            print(f"database {store.database_url} upgraded from {before or 'empty'} to {after}")

    return _run(settings, upgrade, migrate=False)


def _update_user(
    args: argparse.Namespace,
    settings: Settings,
    update: Callable[[Store, UserRecord], Awaitable[UserRecord]],
    *,
    create: bool = False,
) -> int:
    if not create and (refused := _refuse_without_database(args, settings)) is not None:
        return refused

    async def apply(store: Store) -> None:
        if create:
            user = await store.users.find_or_create(args.user)
        else:
            user = await store.users.find_chat_user(args.user)
        user = await update(store, user)
        print(f"{user.ref}: {_flags(user)}")

    return _run(settings, apply)


def _run(
    settings: Settings,
    action: Callable[[Store], Awaitable[None]],
    *,
    migrate: bool = True,
) -> int:
    """Open the store, run ``action`` and turn any storage error into one line."""
    from bot.process.wiring import open_store
    from storage import (
        DatabaseError,
        DataDirError,
        InvalidGrantError,
        InvalidUserRefError,
        StorageError,
    )

    async def main() -> None:
        store = await open_store(settings, migrate=migrate)
        try:
            await action(store)
        finally:
            await store.close()

    try:
        asyncio.run(main())
    except (InvalidUserRefError, InvalidGrantError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    except (DatabaseError, DataDirError) as exc:  # the environment: nothing was done
        return _fail(str(exc), EXIT_USAGE)
    except StorageError as exc:
        return _fail(str(exc), EXIT_FAILED)
    return EXIT_OK


def missing_database(settings: Settings) -> Path | None:
    """The SQLite file the settings name when it does not exist yet, else None.

    None too for a database server: whether it holds the tables is known only by
    connecting, which creates nothing.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(settings.database_url)
    except ArgumentError:
        return None  # opening the store says what is wrong with it, in one line
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None  # a URI; SQLite resolves it
    path = Path(database)
    if path.exists() or not _could_be_created(path.parent):
        return None  # there, or never: opening the store names the unusable folder
    return path


def _could_be_created(folder: Path) -> bool:
    """Whether the bot could make ``folder``: its nearest existing ancestor is a folder it
    may write into (a data dir below a regular file, or a read-only one, is reported by
    the store as the environment problem it is, not as "no database yet")."""
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    return existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)


def _refuse_without_database(args: argparse.Namespace, settings: Settings) -> int | None:
    """Exit code for a command about a user when there is no database (None: there is).

    The reference is checked first: a malformed one is a usage error either way.
    """
    from storage import InvalidUserRefError
    from storage.users import parse_admin_ref

    missing = missing_database(settings)
    if missing is None:
        return None
    try:
        parse_admin_ref(args.user)
    except InvalidUserRefError as exc:
        return _fail(str(exc), EXIT_USAGE)
    return _fail(messages.no_such_user_yet(args.user, missing), EXIT_FAILED)


def _fail(message: str, code: int) -> int:
    messages.error(message)
    return code


def _add_user_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "user", metavar="PLATFORM:ID", help="a Telegram or Discord user id, e.g. telegram:12345"
    )


def _whole_number(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


def _number(minimum: float, *, strict: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if value < minimum or (strict and value == minimum):
            relation = "greater than" if strict else "at least"
            raise argparse.ArgumentTypeError(f"must be {relation} {minimum:g}, not {text}")
        return value

    return parse


def describe_user(user: UserRecord, status: QuotaStatus) -> str:
    """A few lines on a user's flags, limits and usage (for admins, CLI or chat)."""
    from bot.chat.conversation.user_text import escaped

    overrides = {
        "songs/day": user.songs_per_day_override,
        "minutes/day": user.audio_minutes_per_day_override,
        "max song minutes": user.max_song_minutes_override,
        "concurrent": user.max_concurrent_jobs_override,
    }
    overridden = ", ".join(f"{k}={v:g}" for k, v in overrides.items() if v is not None)
    # Escaped: a display name with newlines or terminal escapes could forge lines.
    name = f" ({escaped(user.display_name)})" if user.display_name else ""
    return "\n".join(
        [
            f"{user.ref}{name}",
            f"  first seen   {_when(user.first_seen)}",
            f"  last seen    {_when(user.last_seen)}",
            f"  flags        {_flags(user)}",
            f"  limits       {_describe_limits(status.limits)}",
            f"  overrides    {overridden or 'none (platform defaults)'}",
            f"  last 24 h    {_describe_usage(status)}",
        ]
    )


def _flags(user: UserRecord) -> str:
    flags = [name for name, on in (("admin", user.is_admin), ("banned", user.is_banned)) if on]
    return ", ".join(flags) or "not banned, not admin"


def _describe_limits(limits: QuotaLimits) -> str:
    parts = [
        (limits.songs_per_day, "{:g} songs/day"),
        (limits.audio_minutes_per_day, "{:g} min/day"),
        (limits.max_song_minutes, "songs up to {:g} min"),
        (limits.max_concurrent_jobs, "{:g} at a time"),
    ]
    shown = [template.format(value) for value, template in parts if value is not None]
    return ", ".join(shown) or "unlimited"


def _describe_usage(status: QuotaStatus) -> str:
    from bot.chat.conversation.messages import count

    used = f"{count(status.songs_used, 'song')}, {status.audio_minutes_used:.1f} min used"
    left = []
    if status.songs_left is not None:
        left.append(count(status.songs_left, "song"))
    if status.audio_minutes_left is not None:
        left.append(f"{status.audio_minutes_left:.1f} min")
    text = f"{used}; {' and '.join(left)} left" if left else used
    if status.frees_at is not None:
        text += f"; next frees up at {_when(status.frees_at)}"
    return text


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"
