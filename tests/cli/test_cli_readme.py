"""The command lines the README and the docs show are accepted by the real parser, verbatim.

A new user copies these lines; a README or docs line the CLI refuses (``run --config x``
when global options were only accepted before the command) must fail here, not for them.
The ``karaoke-bot`` lines are parsed, never run; the other lines of shell blocks must name
a script, module or tool that exists.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import shlex
import shutil
from pathlib import Path

import pytest

from bot.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").rglob("*.md"))
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


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


README_COMMANDS = readme_command_lines(README.read_text(encoding="utf-8"))
DOCS_COMMANDS = list(
    dict.fromkeys(
        command for page in DOCS for command in readme_command_lines(page.read_text("utf-8"))
    )
)
SHOWN = [
    (_relative(page), command)
    for page in (README, *DOCS)
    for command in readme_command_lines(page.read_text(encoding="utf-8"))
]


def test_the_readme_shows_the_commands_a_new_user_types():
    for expected in (
        "karaoke-bot run",  # nothing but a token (issue 23)
        "karaoke-bot run --config config.toml",
        "karaoke-bot check --config config.toml",
        "karaoke-bot models make-random demo --repo models/",
    ):
        assert expected in README_COMMANDS, README_COMMANDS


def test_the_docs_show_the_commands_an_operator_types():
    """The operator's detail moved from the README into docs/: the same checks, there."""
    assert DOCS, "no pages under docs/"
    for expected in (
        "karaoke-bot run --config config.toml",
        "karaoke-bot check --config config.toml",
        "karaoke-bot models make-random demo --repo models/",
        "karaoke-bot users grant telegram:12345 --songs 50 --minutes 300",
    ):
        assert expected in DOCS_COMMANDS, DOCS_COMMANDS
    assert len(DOCS_COMMANDS) >= 10


def test_the_readme_and_install_page_show_the_token_only_start_and_the_random_model():
    """Issue 23: a token is a whole deployment; the bot runs on ``make-random``'s model;
    a CPU-only machine is told where torch's CPU build is."""
    install = (ROOT / "docs" / "pages" / "deploying" / "install.md").read_text("utf-8")
    readme = README.read_text(encoding="utf-8")
    for text in (readme, install):
        assert "export KARAOKE_TELEGRAM_TOKEN=" in text
        assert "model.name" in text or 'name = "demo"' in text
    assert 'name = "demo"\nrepo = "models/"' in install
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in install
    # fresh-start-check runs the README's two commands verbatim.
    assert "pip install torch==2.13.0 -e . && karaoke-bot run --config config.toml" in readme
    assert "pip install torch==2.13.0 -e '.[test]' && python -m pytest -q" in readme


@pytest.mark.parametrize(("page", "command"), SHOWN)
def test_every_readme_and_docs_command_line_parses(page, command, capsys):
    argv = shlex.split(command)[1:]
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{page}'s {command!r} is refused: {capsys.readouterr().err}")
    assert callable(args.func)
    if "--config" in argv:
        assert args.config == Path(argv[argv.index("--config") + 1])


# Programs the README and the docs may show besides karaoke-bot and python: what a reader
# has (pip, cp, export), installs for deploying (docker, aws), or gets with the test extra.
_KNOWN_PROGRAMS = {"pip", "cp", "export", "docker", "aws", "ruff", "mypy", "lint-imports", "mkdocs"}
_OUTPUT_FLAGS = {"--dest", "-o", "-d"}
_SHELL_FENCE = re.compile(r"(?ms)^```(?:sh|bash|console)\n(.*?)^```")


def shell_lines(text: str) -> list[list[str]]:
    """Each command of the sh/bash/console blocks, split into words like a shell would.

    Continuation lines are joined, ``&&``/``;``/``||`` separate commands, comments go.
    """
    commands = []
    for block in _SHELL_FENCE.findall(text):
        pending = ""
        for line in block.replace("\\\n", " ").splitlines():
            pending = f"{pending} {line}" if pending else line
            try:
                words = shlex.split(pending, comments=True)
            except ValueError:  # a quote continues on the next line
                continue
            pending = ""
            command: list[str] = []
            for word in [*words, ";"]:
                if word not in ("&&", "||", ";"):
                    command.append(word)
                elif command:
                    commands.append(command)
                    command = []
        assert not pending, f"unbalanced quotes in a shell block: {pending!r}"
    return commands


SHELL = [
    (_relative(page), words)
    for page in (README, *DOCS)
    for words in shell_lines(page.read_text(encoding="utf-8"))
]


def _shell_id(value: str | list[str]) -> str:
    return value if isinstance(value, str) else " ".join(value)[:60]


@pytest.mark.parametrize(("page", "words"), SHELL, ids=_shell_id)
def test_every_shell_line_names_what_exists(page, words):
    """``python benchmarks/x.py``, ``bash x.sh``, ``python -m mod``, ``-f docs/mkdocs.yml``:
    the script, module or file must exist, and the program must be one a reader has."""
    program = words[0]
    if program in ("python", "python3") and words[1] == "-m":
        assert importlib.util.find_spec(words[2]) is not None, f"{page}: no module {words[2]}"
    elif program not in ("python", "python3", "bash", "karaoke-bot"):
        assert program in _KNOWN_PROGRAMS, f"{page}: unknown program in {' '.join(words)!r}"
    tops = {path.name for path in ROOT.iterdir()} - {"out", "models", "data"}
    for flag, word in itertools.pairwise(words):
        if flag in _OUTPUT_FLAGS:
            continue  # a folder the command creates (pip download --dest, -o out/)
        if word.split("/", 1)[0] in tops and not word.startswith("-"):
            assert (ROOT / word).exists(), f"{page}: {word} does not exist"
    if program in ("ruff", "mypy", "lint-imports", "mkdocs", "pip"):
        assert shutil.which(program), f"{page}: {program} is not installed by the test extra"


def test_the_shell_line_reader_splits_like_a_shell():
    text = "```sh\nruff check . && mypy   # types\naws x --y \\\n  '{\"a\":\n 1}'\n```\n"
    assert shell_lines(text) == [
        ["ruff", "check", "."],
        ["mypy"],
        ["aws", "x", "--y", '{"a":  1}'],
    ]


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
    [line] = capsys.readouterr().err.splitlines()  # no usage block before it (issue 23)
    assert line.startswith("karaoke-bot: error: ")
    assert line.endswith(" --help`")
