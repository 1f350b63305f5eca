"""The procrastinate job queue's schema, as the store's migrations pin it.

The distributed backend queues songs with procrastinate, a PostgreSQL job queue whose
tables, types and functions must match the library's SQL exactly. Rather than let the
library create them (``procrastinate schema --apply``), the store's Alembic revisions
apply a copy of procrastinate's SQL vendored into ``storage/migrations``, so:

* one ``karaoke-bot db upgrade`` prepares the whole database, in one transaction;
* the migrations need no procrastinate installed (front-ends of the local backend);
* a revision never changes when the library is upgraded: the copy is frozen, and a new
  procrastinate version means a new revision applying that version's migration files.

The price is that the installed library must be the version the migrations applied,
which :func:`check_procrastinate_version` checks at the start of every process that
talks to the queue.
"""

from __future__ import annotations

import re

from storage.errors import QueueSchemaVersionError

PROCRASTINATE_SCHEMA_VERSION = "3.10.0"
"""The procrastinate version whose schema the newest revision leaves in the database.

Bump it only together with a new revision that applies that version's migrations.
"""


def check_procrastinate_version(installed: str) -> None:
    """Refuse to run against a procrastinate other than the one the schema was made for.

    The versions must be equal, not merely compatible: procrastinate renames and
    replaces its SQL functions between minor releases (``_v1`` becomes ``_v2``), and a
    library a release ahead of its schema fails only at the first job, on a worker,
    with a missing function.

    Args:
        installed: the library's version, e.g. ``importlib.metadata.version("procrastinate")``.

    Raises:
        QueueSchemaVersionError: the versions differ.
    """
    if installed.strip() != PROCRASTINATE_SCHEMA_VERSION:
        raise QueueSchemaVersionError(installed=installed, expected=PROCRASTINATE_SCHEMA_VERSION)


# What can hide a semicolon that does not end a statement: comments, quoted strings
# and identifiers, and dollar-quoted bodies ($$ ... $$ or $tag$ ... $tag$).
_TOKEN = re.compile(
    r"""
      --[^\n]*                                  # line comment
    | /\*.*?\*/                                 # block comment (not nested)
    | '(?:[^']|'')*'                            # string literal; '' is a quote
    | "(?:[^"]|"")*"                            # quoted identifier
    | (?<![\w$])(?P<dollar>\$(?:[A-Za-z_]\w*)?\$) # opening dollar quote
    | (?P<unclosed>['"]|/\*)                    # an opener the cases above could not close
    | ;                                         # a statement's end
    """,
    re.VERBOSE | re.DOTALL,
)


def split_sql_statements(script: str) -> list[str]:
    """Cut an SQL script into its statements, for drivers that run one at a time.

    asyncpg, like every driver that prepares statements, refuses a string with several
    commands, and procrastinate ships its schema as one script. The cut honours
    comments, quotes and dollar-quoted function bodies; statements that are only
    comments are dropped.

    Raises:
        ValueError: a quote, comment or dollar-quoted body is never closed.
    """
    statements: list[str] = []
    start = position = 0
    while (match := _TOKEN.search(script, position)) is not None:
        position = match.end()
        if opener := match.group("unclosed"):
            raise ValueError(f"{opener} at offset {match.start()} is never closed")
        if tag := match.group("dollar"):
            close = script.find(tag, position)
            if close < 0:
                raise ValueError(f"{tag} at offset {match.start()} is never closed")
            position = close + len(tag)
        elif match.group(0) == ";":
            statements.append(script[start : match.start()])
            start = position
    statements.append(script[start:])
    return [statement.strip() for statement in statements if _has_code(statement)]


def _has_code(statement: str) -> bool:
    without_comments = re.sub(r"--[^\n]*|/\*.*?\*/", "", statement, flags=re.DOTALL)
    return bool(without_comments.strip())
