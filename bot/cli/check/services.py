"""Checks of what the bot talks to: the chat platforms' tokens, the database's schema,
and (with the distributed backend) the queue, the blob store and live workers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from bot.cli.check.findings import Finding, Level, one_line_reason
from bot.ops.secrets import (
    MASK,
    mask_url_password,
    plain_value,
)
from bot.settings import Settings

DATABASE_TIMEOUT_SECONDS = 10.0


def _platform_sections(settings: Settings) -> Iterator[tuple[str, BaseModel]]:
    """Sections that look like a chat platform: an ``enabled`` switch and a ``token``."""
    for name in type(settings).model_fields:
        section = getattr(settings, name)
        if isinstance(section, BaseModel) and {"enabled", "token"} <= set(
            type(section).model_fields
        ):
            yield name, section


def check_platforms(settings: Settings) -> list[Finding]:
    """Each enabled platform has a token; at least one platform is enabled."""
    findings = []
    enabled = 0
    for name, section in _platform_sections(settings):
        token = getattr(section, "token", None)
        enabled += bool(getattr(section, "enabled", False))
        if not getattr(section, "enabled", False):
            findings.append(Finding("OK", name, "disabled"))
        elif token is None or not plain_value(token).strip():
            findings.append(
                Finding(
                    "FATAL",
                    name,
                    f"enabled but no token: set KARAOKE_{name.upper()}_TOKEN in the "
                    f"environment (or {name}.token in the config)",
                )
            )
        else:
            findings.append(Finding("OK", name, f"enabled, token set ({MASK})"))
    if not findings:
        return [Finding("WARN", "platforms", "no chat platform settings in this version")]
    if not enabled:
        names = ", ".join(f"{name}.enabled" for name, _ in _platform_sections(settings))
        findings.append(
            Finding("FATAL", "platforms", f"no chat platform is enabled (set {names} = true)")
        )
    return findings


def check_database(settings: Settings) -> Finding:
    """The database opens and its schema is at the revision this code expects.

    Behind is a warning (the bot upgrades it on start); a revision this code does not
    know means a newer version wrote it, and running older code on it is fatal.
    """
    url = settings.database_url
    subject = f"database {mask_url_password(url)}"
    # Imported here: alembic and the drivers are not needed by the other checks.
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import make_url

    from storage import migrate
    from storage.db import open_database

    head = migrate.head_revision()
    known = {
        script.revision
        for script in ScriptDirectory.from_config(migrate.alembic_config()).walk_revisions()
    }
    try:
        parsed = make_url(url)
    except Exception as exc:
        return Finding("FATAL", subject, f"invalid database URL: {exc}")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not Path(parsed.database).exists():
            return Finding("OK", subject, "not created yet: created and migrated at start")

    async def read_revision() -> str | None:
        database = open_database(url, busy_timeout_seconds=settings.database.busy_timeout_seconds)
        try:
            async with asyncio.timeout(DATABASE_TIMEOUT_SECONDS):
                return await migrate.current_revision(database)
        finally:
            await database.close()

    try:
        current = asyncio.run(read_revision())
    except TimeoutError:
        return Finding("FATAL", subject, f"no answer within {DATABASE_TIMEOUT_SECONDS:.0f} s")
    except Exception as exc:  # driver errors differ by backend; each is one fatal line
        return Finding("FATAL", subject, f"cannot read it: {one_line_reason(exc)}")
    if current == head:
        return Finding("OK", subject, f"schema up to date (revision {head})")
    if current is None:
        return Finding("WARN", subject, "empty: the schema is created at start")
    if current not in known:
        return Finding(
            "FATAL",
            subject,
            f"at revision {current}, unknown to this version (written by a newer one?)",
        )
    return Finding(
        "WARN",
        subject,
        f"at revision {current}, head is {head}: upgraded at start or by `karaoke-bot db upgrade`",
    )


def check_fleet(settings: Settings) -> list[Finding]:
    """With the distributed backend: the queue, the blob store, and live workers."""
    if settings.backend.kind != "distributed":
        return []
    from bot.distributed.frontend import DistributedBackend
    from bot.distributed.setup import distributed_backend

    backend = distributed_backend(settings)
    queue_subject = f"queue {settings.queue.name!r}"
    blob_subject = f"blob store {backend.describe_blobs()}"

    async def probe(backend: DistributedBackend) -> list[Finding]:
        findings = []
        async with asyncio.timeout(DATABASE_TIMEOUT_SECONDS):
            checks = backend.readiness_checks()
            async with backend.opened():
                try:
                    await checks["queue"]()
                    findings.append(Finding("OK", queue_subject, "reachable"))
                except Exception as exc:
                    findings.append(Finding("FATAL", queue_subject, one_line_reason(exc)))
                try:
                    await checks["blob_store"]()
                    findings.append(Finding("OK", blob_subject, "can write and delete"))
                except Exception as exc:
                    findings.append(Finding("FATAL", blob_subject, one_line_reason(exc)))
                try:
                    alive = await backend.workers_alive()
                except Exception as exc:
                    findings.append(Finding("FATAL", "workers", one_line_reason(exc)))
                else:
                    level: Level = "OK" if alive else "WARN"
                    note = f"{alive} alive" if alive else "none alive: songs wait for one to start"
                    findings.append(Finding(level, "workers", note))
        return findings

    try:
        return asyncio.run(probe(backend))
    except TimeoutError:
        return [Finding("FATAL", queue_subject, "no answer within 10 s")]
    except Exception as exc:
        return [Finding("FATAL", queue_subject, one_line_reason(exc))]
