"""The store's SQLAlchemy URL turned into the libpq string psycopg (procrastinate) takes."""

from __future__ import annotations

import pytest

from bot.distributed.postgres import psycopg_conninfo
from storage.errors import DatabaseOpenError

psycopg = pytest.importorskip("psycopg")
conninfo_to_dict = psycopg.conninfo.conninfo_to_dict


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+asyncpg://karaoke:secret@db.example:5433/karaoke",
            {
                "host": "db.example",
                "port": "5433",
                "user": "karaoke",
                "password": "secret",
                "dbname": "karaoke",
            },
        ),
        (
            # Percent-escapes decoded; quotes, backslashes, spaces, @ : / ? # = survive.
            "postgresql+asyncpg://karaoke:p%40ss%3Aw%2Frd%3F%23%20%27q%27%5C%3D@db/k",
            {
                "host": "db",
                "user": "karaoke",
                "password": "p@ss:w/rd?# 'q'\\=",
                "dbname": "k",
            },
        ),
        (
            "postgresql+asyncpg://postgres@127.0.0.1:5432/test",
            {"host": "127.0.0.1", "port": "5432", "user": "postgres", "dbname": "test"},
        ),
        (
            "postgresql+asyncpg://karaoke:@db/k",  # an empty password is still a password
            {"host": "db", "user": "karaoke", "password": "", "dbname": "k"},
        ),
        (
            "postgresql+asyncpg://karaoke@/karaoke?host=/var/run/postgresql",
            {"host": "/var/run/postgresql", "user": "karaoke", "dbname": "karaoke"},
        ),
        (
            "postgresql+asyncpg://karaoke@/karaoke?host=/run/my%20sockets&port=5999",
            {"host": "/run/my sockets", "port": "5999", "user": "karaoke", "dbname": "karaoke"},
        ),
        (
            "postgresql+asyncpg://karaoke@/k?host=primary:5432&host=standby:5433",
            {"host": "primary,standby", "port": "5432,5433", "user": "karaoke", "dbname": "k"},
        ),
        (
            "postgresql+asyncpg://k@db/k?ssl=require&prepared_statement_cache_size=0"
            "&application_name=karaoke%20worker",
            {
                "host": "db",
                "user": "k",
                "dbname": "k",
                "sslmode": "require",
                "application_name": "karaoke worker",
            },
        ),
        ("postgresql://db", {"host": "db"}),
        (
            "postgresql+psycopg://k@db/k?sslmode=verify-full",
            {"host": "db", "user": "k", "dbname": "k", "sslmode": "verify-full"},
        ),
    ],
)
def test_urls_become_the_same_libpq_settings(url: str, expected: dict[str, str]) -> None:
    assert conninfo_to_dict(psycopg_conninfo(url)) == expected


def test_a_url_object_is_accepted_too() -> None:
    from sqlalchemy.engine import make_url

    url = make_url("postgresql+asyncpg://a:b@h/d")
    assert conninfo_to_dict(psycopg_conninfo(url))["password"] == "b"


@pytest.mark.parametrize(
    "url", ["sqlite+aiosqlite:///karaoke.db", "mysql+aiomysql://root:hunter2@db/k", "::"]
)
def test_other_databases_and_garbage_are_refused_without_the_password(url: str) -> None:
    with pytest.raises(DatabaseOpenError) as refused:
        psycopg_conninfo(url)
    assert "hunter2" not in str(refused.value)


async def test_psycopg_reaches_the_database_the_url_names(postgres_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(psycopg_conninfo(postgres_url)) as conn:
        cursor = await conn.execute("SELECT current_database()")
        row = await cursor.fetchone()
    assert row is not None
    assert row[0] == postgres_url.rsplit("/", 1)[-1].split("?")[0]
