"""Commands answer at once: what each imports, asserted instead of timed.

Importing torch takes seconds; ``--help``, a config error and the store's commands must
not wait for it, nor for numpy. ``--help`` and a usage error must not even load the
store (SQLAlchemy, Alembic) or the settings (pydantic): 0.9 s before issue 23, where
``python -c pass`` takes 0.04 s (``benchmarks/cli_startup_benchmark.py`` prints the
times). Each command runs in a fresh interpreter, since this one has torch already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "demucs", "numpy")
"""Not for any command that runs no model."""
LIBRARIES = (*HEAVY, "sqlalchemy", "alembic", "pydantic")
"""Not for a command that is refused, or only asks for help, before reading the config."""
_PROBE = """
import json, sys
from bot.cli.main import main
try:
    code = main(sys.argv[2:])
except SystemExit as exit:
    code = exit.code
heavy = [name for name in sys.argv.pop(1).split(",") if name in sys.modules]
print(json.dumps({"code": code, "heavy": heavy}))
"""


def _run_cli(argv: list[str], folder: Path, watched: tuple[str, ...] = HEAVY) -> dict:
    environment = {name: value for name, value in os.environ.items() if "KARAOKE" not in name}
    environment |= {"KARAOKE_DATA_DIR": str(folder / "data"), "PYTHONPATH": str(ROOT)}
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE, ",".join(watched), *argv],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in completed.stderr, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--help"], 0),
        (["check", "--config", "{bad_config}"], 2),
        (["users", "ban", "telegram:12345"], 0),
        (["users", "show", "telegram:12345"], 1),
        (["users", "grant", "telegram:12345", "--songs", "3"], 0),
        (["stats"], 0),
        (["db", "upgrade"], 0),
    ],
)
def test_commands_without_a_model_do_not_import_torch(tmp_path, argv, code):
    bad_config = tmp_path / "bad.toml"  # not ./config.toml, which every command reads
    bad_config.write_text("[model]\nnmae = 'htdemucs'\n")
    argv = [arg.format(bad_config=bad_config) for arg in argv]
    result = _run_cli(argv, tmp_path)
    assert result == {"code": code, "heavy": []}


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["separate", "--help"],
        ["users", "grant", "--help"],
        ["separate", "song.mp3", "--format", "ogg"],
        ["separate", "song.mp3", "--key", "1.5"],
        ["users", "grant", "telegram:1", "--songs", "-3"],
        ["nosuch"],
    ],
)
def test_help_and_usage_errors_load_no_library(tmp_path, argv):
    """They answer from argparse alone: no settings, no store, no numpy, no torch."""
    result = _run_cli(argv, tmp_path, LIBRARIES)
    assert result["heavy"] == []
    assert result["code"] in (0, 2)
