"""A usage error is one line naming the command whose ``--help`` tells more (issue 23).

argparse printed a usage block of up to seven lines before the line that mattered; every
other problem of the command line is already one line, ``karaoke-bot: error: ...``.
"""

from __future__ import annotations

import pytest

from bot.cli.main import main


@pytest.mark.parametrize(
    ("argv", "problem", "command"),
    [
        (
            ["separate", "a.mp3", "--format", "ogg"],
            "argument --format: invalid choice: 'ogg'",
            "karaoke-bot separate",
        ),
        (
            ["separate", "a.mp3", "--key", "1.5"],
            "argument --key: invalid int value: '1.5'",
            "karaoke-bot separate",
        ),
        (
            ["separate", "a.mp3", "--bogus"],
            "unrecognized arguments: --bogus",
            "karaoke-bot separate",
        ),
        (
            ["users", "grant", "telegram:1", "--songs", "-3"],
            "argument --songs: must be at least 0, not -3",
            "karaoke-bot users grant",
        ),
        (["users"], "the following arguments are required: ACTION", "karaoke-bot users"),
        (
            ["models", "download"],
            "the following arguments are required: name",
            "karaoke-bot models download",
        ),
        (["db", "upgrade", "--x"], "unrecognized arguments: --x", "karaoke-bot db upgrade"),
        (["stats", "--top", "0"], "argument --top: must be at least 1, not 0", "karaoke-bot stats"),
        (["nosuch"], "argument COMMAND: invalid choice: 'nosuch'", "karaoke-bot"),
    ],
)
def test_a_usage_error_is_one_line_pointing_at_the_commands_help(argv, problem, command, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith(f"karaoke-bot: error: {problem}")
    assert line.endswith(f"; see `{command} --help`")
    assert captured.out == ""
