"""PostgreSQL connection strings for libpq, from the store's SQLAlchemy URL.

The store reaches PostgreSQL through SQLAlchemy and asyncpg, while procrastinate (the
distributed backend's job queue) connects with psycopg, which speaks libpq's
connection strings. Both must reach the same database, and operators configure one
URL, so front-ends and workers derive psycopg's string from the store's URL here
rather than each parsing it their own way. Nothing here imports psycopg.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from storage.errors import DatabaseOpenError

# Query parameters of SQLAlchemy or asyncpg that libpq does not know (it refuses
# unknown keywords); they tune the asyncpg connection only, so they are dropped.
_ASYNCPG_ONLY = frozenset(
    {
        "prepared_statement_cache_size",
        "prepared_statement_name_func",
        "async_fallback",
        "command_timeout",
        "server_settings",
    }
)

# asyncpg's ``ssl`` values that are libpq ``sslmode`` values too, or mean one.
_SSL_TO_SSLMODE = {
    "true": "require",
    "false": "disable",
    "disable": "disable",
    "allow": "allow",
    "prefer": "prefer",
    "require": "require",
    "verify-ca": "verify-ca",
    "verify-full": "verify-full",
}


def psycopg_conninfo(sqlalchemy_url: str | URL) -> str:
    """The libpq keyword/value string (``host=... dbname=...``) for a PostgreSQL URL.

    ``postgresql+asyncpg://user:p%40ss@db:5432/karaoke?ssl=require`` becomes
    ``host=db port=5432 user=user password='p@ss' dbname=karaoke sslmode=require``.
    The keyword form, not a URL, so passwords and socket folders need no URL escaping.
    A ``host`` query parameter (a Unix socket folder, or several ``host:port`` for
    failover) is kept; asyncpg's ``ssl`` becomes ``sslmode``; asyncpg-only options are
    dropped; other parameters pass through for libpq to use or refuse.

    Raises:
        DatabaseOpenError: the URL cannot be parsed or is not a PostgreSQL URL.
    """
    try:
        url = make_url(sqlalchemy_url)
    except ArgumentError as exc:
        raise DatabaseOpenError(url="(an unparsable database URL)", reason=str(exc)) from None
    if url.get_backend_name() != "postgresql":
        shown = url.render_as_string(hide_password=True)
        raise DatabaseOpenError(url=shown, reason="a queue needs a PostgreSQL database URL")
    pairs: list[tuple[str, str]] = []
    query = {key: _values(value) for key, value in url.query.items()}
    hosts = query.pop("host", [])
    if url.host is not None or not hosts:
        pairs += _host_and_port(url.host, url.port)
    else:
        pairs += _query_hosts(hosts, url.port)
    if url.username is not None:
        pairs.append(("user", url.username))
    if url.password is not None:
        pairs.append(("password", str(url.password)))
    if url.database:
        pairs.append(("dbname", url.database))
    for key, values in query.items():
        if key in _ASYNCPG_ONLY:
            continue
        value = values[-1]
        if key == "ssl":
            key, value = "sslmode", _SSL_TO_SSLMODE.get(value.lower(), value)
        pairs.append((key, value))
    return " ".join(f"{key}={_quote(value)}" for key, value in pairs)


def _values(value: str | tuple[str, ...]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _host_and_port(host: str | None, port: int | None) -> list[tuple[str, str]]:
    pairs = [] if host is None else [("host", host)]
    return pairs if port is None else [*pairs, ("port", str(port))]


def _query_hosts(hosts: list[str], port: int | None) -> list[tuple[str, str]]:
    """``?host=/run/postgresql`` or ``?host=a:5432&host=b:5433`` (SQLAlchemy's forms)."""
    names: list[str] = []
    ports: list[str] = []
    for entry in hosts:
        name, separator, entry_port = entry.rpartition(":")
        if separator and not entry.startswith("/") and entry_port.isdigit():
            names.append(name)
            ports.append(entry_port)
        else:
            names.append(entry)
            ports.append("" if port is None else str(port))
    pairs = [("host", ",".join(names))]
    if any(ports):
        pairs.append(("port", ",".join(ports)))
    return pairs


def _quote(value: str) -> str:
    """libpq's quoting: single quotes when needed, with ``\\`` and ``'`` escaped."""
    if value and not any(char.isspace() or char in "'\\" for char in value):
        return value
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"
