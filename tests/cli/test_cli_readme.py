"""The command lines the README shows are accepted by the real parser, verbatim.

A new user copies these lines; a README line the CLI refuses (``run --config x`` when
global options were only accepted before the command) must fail here, not for them.
The lines are parsed, never run.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from bot.cli.main import build_parser, main

README = Path(__file__).resolve().parents[2] / "README.md"
_INLINE = re.compile(r"`(karaoke-bot [^`]+)`")
_SHELL_SEPARATORS = re.compile(r"&&|\|\||;")


def readme_command_lines(text: str) -> list[str]:
    """Every ``karaoke-bot ...`` command in fenced code blocks and inline code spans.

    In a fenced block, a command starts a line or follows ``&&``/``;``, and ends at the
    next of those or at a ``#`` comment (``docker build -t karaoke-bot`` is an image
    name, not a command). The synopsis block (``[-o OUTDIR]``, ``show|ban``) is
    notation, not a command line: lines with brackets, ``|`` or ``...`` are left out.
    """
    commands = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            for part in _SHELL_SEPARATORS.split(line.split(" #", 1)[0]):
                commands.append(part.strip())
        else:
            commands.extend(match.group(1) for match in _INLINE.finditer(line))
    return [
        command
        for command in dict.fromkeys(commands)
        if command.startswith("karaoke-bot ")
        and not any(mark in command for mark in ("[", "|", "..."))
    ]


COMMANDS = readme_command_lines(README.read_text(encoding="utf-8"))


def test_the_readme_shows_the_commands_a_new_user_types():
    for expected in (
        "karaoke-bot run --config config.toml",
        "karaoke-bot check --config config.toml",
        "karaoke-bot models make-random demo --repo models/",
        "karaoke-bot users grant telegram:12345 --songs 50 --minutes 300",
    ):
        assert expected in COMMANDS, COMMANDS
    assert len(COMMANDS) >= 10


@pytest.mark.parametrize("command", COMMANDS)
def test_every_readme_command_line_parses(command, capsys):
    argv = shlex.split(command)[1:]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"the README's {command!r} is refused: {capsys.readouterr().err}")
    assert callable(args.func)
    if "--config" in argv:
        assert args.config == Path(argv[argv.index("--config") + 1])


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "c.toml", "-v", "run"],
        ["run", "--config", "c.toml", "-v"],
        ["-v", "run", "--config", "c.toml"],
        ["--config", "c.toml", "check", "--verbose"],
        ["users", "grant", "--config", "c.toml", "telegram:1", "--songs", "2", "-v"],
        ["users", "-v", "ban", "telegram:1", "--config", "c.toml"],
        ["models", "download", "htdemucs", "--config", "c.toml", "-v"],
        ["models", "make-random", "demo", "--repo", "models/", "-v", "--config", "c.toml"],
        ["db", "upgrade", "-v", "--config", "c.toml"],
        ["stats", "--top", "3", "--config", "c.toml", "-v"],
        ["separate", "a.mp3", "--config", "c.toml", "-o", "out", "-v"],
    ],
)
def test_global_options_go_before_or_after_the_command(argv):
    args = build_parser().parse_args(argv)
    assert args.config == Path("c.toml")
    assert args.verbose is True


def test_a_command_does_not_reset_global_options_given_before_it():
    args = build_parser().parse_args(["--config", "c.toml", "-v", "users", "show", "telegram:1"])
    assert (args.config, args.verbose) == (Path("c.toml"), True)
    args = build_parser().parse_args(["stats"])
    assert (args.config, args.verbose) == (None, False)


def test_a_config_given_after_the_command_is_the_one_read(tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text("[model]\nnmae = 'x'\n")
    assert main(["check", "--config", str(config)]) == 2
    assert capsys.readouterr().err == (
        f"karaoke-bot: error: unknown setting 'model.nmae' in {config} (check the spelling)\n"
    )


def test_the_help_lists_every_command_and_option(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    help_text = capsys.readouterr().out
    for word in ("make-random", "--reset", "users grant", "db upgrade", "stats", "check"):
        assert word in help_text, word


@pytest.mark.parametrize(
    "argv",
    [
        ["users", "grant", "telegram:1", "--songs", "-3"],
        ["separate", "--stems", "three", "a.mp3"],
        ["models", "download"],
        ["nosuch"],
    ],
)
def test_usage_errors_have_the_same_prefix_as_every_other_error(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("usage: karaoke-bot")
    assert lines[-1].startswith("karaoke-bot: error: ")
