"""The admin commands, called directly and through argparse, on a real SQLite file."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli.admin import (
    add_admin_commands,
    db_upgrade,
    show_stats,
    users_grant,
    users_show,
)
from bot.cli.main import main
from bot.process.wiring import open_store
from bot.settings import Settings
from storage import JobRequest, QuotaLimits
from storage.migrate import head_revision

SHA = "0" * 64


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.model_validate({"general": {"data_dir": str(tmp_path / "data")}})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="karaoke-bot")
    add_admin_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def _run(settings: Settings, *argv: str) -> int:
    args = _parser().parse_args(argv)
    return args.func(args, settings)


def _seed(settings: Settings, *, jobs: int = 0, name: str = "Ann") -> None:
    async def seed() -> None:
        store = await open_store(settings)
        try:
            user = await store.users.upsert("telegram", "12", name)
            for number in range(jobs):
                request = JobRequest(SHA, 240.0, 1000, "htdemucs")
                job = await store.jobs.reserve(
                    user, request, settings.quota.for_platform("telegram").as_limits()
                )
                await store.jobs.mark_running(job.id)
                await store.jobs.mark_done(job.id, f"key-{number}", cache_hit=number == 0)
        finally:
            await store.close()

    asyncio.run(seed())


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_settings_limits_become_storage_limits(settings):
    assert settings.quota.for_platform("telegram").as_limits() == QuotaLimits(10, 60, 15, 2)
    assert settings.quota.for_platform("discord").as_limits().songs_per_day == 10


def test_users_show(settings, capsys):
    _seed(settings, jobs=2)
    assert _run(settings, "users", "show", "telegram:12") == 0
    out = capsys.readouterr().out
    assert out.startswith("telegram:12 (Ann)\n")
    assert "10 songs/day, 60 min/day, songs up to 15 min, 2 at a time" in out
    assert "1 song, 4.0 min used" in out  # the cache hit was free
    assert "9 songs and 56.0 min left" in out
    assert "next frees up at" in out
    assert "active jobs  none" in out


def test_users_grant_then_show(settings, capsys):
    _seed(settings)
    assert _run(settings, "users", "grant", "telegram:12", "--songs", "30", "--minutes", "90") == 0
    assert "30 songs/day, 90 min/day" in capsys.readouterr().out
    assert _run(settings, "users", "show", "telegram:12") == 0
    assert "songs/day=30, minutes/day=90" in capsys.readouterr().out
    assert _run(settings, "users", "grant", "telegram:12", "--reset") == 0
    assert "none (platform defaults)" in capsys.readouterr().out


def test_ban_unban_admin(settings, capsys):
    _seed(settings)
    assert _run(settings, "users", "ban", "telegram:12") == 0
    assert capsys.readouterr().out == "telegram:12: banned\n"
    assert _run(settings, "users", "admin", "telegram:12") == 0
    assert capsys.readouterr().out == "telegram:12: admin, banned\n"
    assert _run(settings, "users", "unban", "telegram:12") == 0
    assert _run(settings, "users", "unadmin", "telegram:12") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "telegram:12: not banned, not admin"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("telegram-12", "expected PLATFORM:ID"),
        ("myspace:1", "unknown platform 'myspace'"),
        ("nosuch:1", "unknown platform 'nosuch'"),
        ("telegram:abc", "a telegram id is a number"),
        ("discord:12a", "a discord id is a number"),
        ("cli:me", "unknown platform 'cli' (expected telegram, discord)"),
    ],
)
@pytest.mark.parametrize("action", ["show", "ban", "unban", "admin", "grant"])
def test_bad_user_refs_are_one_line_usage_errors(settings, capsys, ref, message, action):
    extra = ["--songs", "1"] if action == "grant" else []
    assert _run(settings, "users", action, ref, *extra) == 2
    line = _one_line_error(capsys)
    assert line.startswith(f"karaoke-bot: error: invalid user {ref!r}: ")
    assert message in line
    assert not _users_in_store(settings)  # nothing was created


def _users_in_store(settings: Settings) -> int:
    async def count() -> int:
        store = await open_store(settings)
        try:
            return (await store.stats.collect()).users
        finally:
            await store.close()

    return asyncio.run(count())


def test_unknown_users_are_one_line_errors(settings, capsys):
    assert _users_in_store(settings) == 0  # a database, without them
    assert _run(settings, "users", "show", "telegram:404") == 1
    assert _one_line_error(capsys) == "karaoke-bot: error: no such user: telegram:404"
    assert _run(settings, "users", "unban", "telegram:404") == 1  # nothing to lift
    assert _one_line_error(capsys) == "karaoke-bot: error: no such user: telegram:404"


def test_grant_ban_and_admin_create_a_user_not_seen_yet(settings, capsys):
    """The docs' own examples (users and quotas page), on a fresh database: pre-grant a
    friend, pre-ban."""
    assert (
        _run(settings, "users", "grant", "telegram:12345", "--songs", "20", "--minutes", "120") == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("telegram:12345\n")  # no display name until they write
    assert "20 songs/day, 120 min/day" in out
    assert _run(settings, "users", "ban", "telegram:666") == 0
    assert capsys.readouterr().out == "telegram:666: banned\n"
    assert _run(settings, "users", "admin", "discord:80351110224678912") == 0
    assert capsys.readouterr().out == "discord:80351110224678912: admin\n"
    assert _run(settings, "users", "show", "telegram:666") == 0
    assert "flags        banned" in capsys.readouterr().out

    async def first_message() -> str:
        store = await open_store(settings)
        try:
            user = await store.users.upsert("telegram", "666", "Mallory")
            return f"{user.display_name} {user.is_banned}"
        finally:
            await store.close()

    assert asyncio.run(first_message()) == "Mallory True"  # the ban holds when they write


def test_admin_commands_print_no_log_lines(tmp_path, monkeypatch, capsys):
    """No alembic INFO lines around an admin command's answer, even on a new database."""
    monkeypatch.setenv("KARAOKE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("KARAOKE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["users", "ban", "telegram:5"]) == 0
    assert main(["stats"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.startswith("telegram:5: banned\n")


@pytest.mark.parametrize(
    "argv",
    [
        ["--songs", "-3"],
        ["--minutes", "-1"],
        ["--songs", "many"],
        ["--max-song-minutes", "0"],
        ["--concurrent", "0"],
        ["--minutes", "nan"],
    ],
)
def test_negative_grants_are_refused_by_argparse(settings, capsys, argv):
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(["users", "grant", "telegram:12", *argv])
    assert exited.value.code == 2
    assert "argument --" in capsys.readouterr().err


def test_negative_grants_are_refused_when_called_directly(settings, capsys):
    _seed(settings)
    args = argparse.Namespace(
        user="telegram:12",
        songs=-3,
        minutes=None,
        max_song_minutes=None,
        concurrent=None,
        reset=False,
    )
    assert users_grant(args, settings) == 2
    assert "invalid songs -3: must be at least 0" in _one_line_error(capsys)


def test_an_empty_grant_is_a_usage_error(settings, capsys):
    assert _run(settings, "users", "grant", "telegram:12") == 2
    assert "nothing to grant" in _one_line_error(capsys)


def test_stats(settings, capsys):
    _seed(settings, jobs=4)
    assert show_stats(argparse.Namespace(top=5), settings) == 0
    out = capsys.readouterr().out
    assert "users            1" in out
    assert "done 4" in out
    assert "audio processed  0.27 h" in out
    assert "cache hits       1 of 4 finished jobs (25%)" in out
    assert "1. telegram:12 (Ann): 4 songs, 16.0 min" in out


def test_stats_on_a_new_database(settings, capsys):
    assert _users_in_store(settings) == 0  # created and migrated, no job yet
    assert _run(settings, "stats") == 0
    assert "no finished jobs yet" in capsys.readouterr().out


def test_db_upgrade(settings, capsys):
    assert db_upgrade(argparse.Namespace(), settings) == 0
    assert f"upgraded from empty to {head_revision()}" in capsys.readouterr().out
    assert _run(settings, "db", "upgrade") == 0
    assert f"up to date (revision {head_revision()})" in capsys.readouterr().out
    assert (settings.general.data_dir / "karaoke.db").is_file()


def test_a_file_that_is_not_a_database_is_a_one_line_error(settings, capsys):
    settings.general.data_dir.mkdir(parents=True)
    (settings.general.data_dir / "karaoke.db").write_text("definitely not SQLite\n" * 200)
    for command in (["db", "upgrade"], ["stats"], ["users", "show", "telegram:1"]):
        assert _run(settings, *command) == 2  # the environment's problem: exit 2
        assert "file is not a database" in _one_line_error(capsys)


def test_a_data_dir_below_a_regular_file_is_a_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    settings = Settings.model_validate({"general": {"data_dir": str(blocker / "data")}})
    assert _run(settings, "stats") == 2
    assert "not usable" in _one_line_error(capsys)


def test_a_read_only_data_dir_is_a_one_line_error(tmp_path, capsys):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o555)
    try:
        if _writable(data_dir):
            pytest.skip("this user (root?) can write to a read-only folder")
        settings = Settings.model_validate({"general": {"data_dir": str(data_dir)}})
        assert users_show(argparse.Namespace(user="telegram:1"), settings) == 2
        assert "Permission denied" in _one_line_error(capsys)
    finally:
        data_dir.chmod(0o755)


def _writable(folder: Path) -> bool:
    try:
        (folder / "probe").touch()
    except PermissionError:
        return False
    (folder / "probe").unlink()
    return True


HOSTILE_NAME = "Eve\x1b[2J\x1b[31m\u202enimda\ntelegram:1 (root)\r"
"""Terminal escapes (clear the screen, red), a right-to-left override and a forged line."""


def test_display_names_are_printed_escaped(settings, capsys):
    """Issue 20: ``users show`` and ``stats`` printed a display name's escape codes, RLO
    and newlines raw: a name could forge lines on an operator's terminal."""
    _seed(settings, jobs=1, name=HOSTILE_NAME)
    assert _run(settings, "users", "show", "telegram:12") == 0
    assert _run(settings, "stats") == 0
    out = capsys.readouterr().out
    assert not {"\x1b", "\u202e", "\r"} & set(out)
    shown = "(Eve\\x1b[2J\\x1b[31m\\u202enimda\\ntelegram:1 (root)\\r)"
    assert out.startswith(f"telegram:12 {shown}\n")
    assert f"1. telegram:12 {shown}: 1 song" in out
    assert not any(line.startswith("telegram:1 ") for line in out.splitlines())


def _cli_in(folder: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """The installed command's code run in ``folder``, with no config and no data dir set."""
    environment = {name: value for name, value in os.environ.items() if "KARAOKE" not in name}
    environment["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return subprocess.run(
        [sys.executable, "-m", "bot.cli.main", *argv],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("argv", "code", "answer"),
    [
        (
            ["stats"],
            0,
            "no songs yet: there is no database at {db} (the bot creates it when it runs)",
        ),
        (
            ["users", "show", "telegram:5"],
            1,
            "karaoke-bot: error: no such user: telegram:5 (there is no database at {db} yet)",
        ),
        (
            ["users", "unban", "telegram:5"],
            1,
            "karaoke-bot: error: no such user: telegram:5 (there is no database at {db} yet)",
        ),
        (
            ["users", "show", "telegram-5"],
            2,
            "karaoke-bot: error: invalid user 'telegram-5': expected PLATFORM:ID, "
            "e.g. telegram:12345",
        ),
    ],
)
def test_reading_commands_in_an_empty_folder_create_nothing(tmp_path, argv, code, answer):
    """``stats`` in a fresh folder used to create ./data/karaoke.db to count nothing."""
    completed = _cli_in(tmp_path, *argv)
    assert completed.returncode == code
    [line] = (completed.stdout + completed.stderr).splitlines()
    assert line == answer.format(db=tmp_path / "data" / "karaoke.db")
    assert list(tmp_path.iterdir()) == []
