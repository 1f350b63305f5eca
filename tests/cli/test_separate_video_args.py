"""``separate --video [--lyrics FILE]`` refuses what it cannot use before the model runs.

A lyrics file is read bounded, cleaned and parsed by ``separation.lyrics.parse`` before
torch is imported: each refusal is one line naming the flag and the file, exit 2, and
nothing is created. Every case runs with a model that cannot load, so a command that got
past the lyrics would say so instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli.main import build_parser, main
from bot.cli.separate import apply_separate_overrides
from bot.cli.separate_prep import output_file
from bot.settings import Settings
from separation.audio.render_options import RenderOptions

MISSING_MODEL = "no-such-model-anywhere"
SYNCED = "[00:00.50]Hello little\n[00:01.80]world of songs\n"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KARAOKE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("KARAOKE_CONFIG", raising=False)
    return tmp_path


def _refusal(cli: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> str:
    """The one line ``separate`` answers ``flags`` with; it must exit 2 and create nothing."""
    song = cli / "song.mp3"
    song.write_bytes(b"")  # never read: the lyrics are refused first
    argv = ["separate", str(song), *flags, "--model", MISSING_MODEL, "-o", "out"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    [line] = captured.err.splitlines()
    assert not (cli / "out").exists() and not (cli / "data").exists()
    return line


def test_lyrics_without_video_is_a_usage_error(cli, capsys):
    lyrics = cli / "song.lrc"
    lyrics.write_text(SYNCED)
    line = _refusal(cli, capsys, "--lyrics", str(lyrics))
    assert line == (
        "karaoke-bot: error: argument --lyrics: the words are for the karaoke video; "
        "add --video (or drop --lyrics)"
    )


def test_a_missing_lyrics_file_is_named(cli, capsys):
    line = _refusal(cli, capsys, "--video", "--lyrics", "nowhere.lrc")
    assert line == "karaoke-bot: error: argument --lyrics: nowhere.lrc: no such file"


def test_a_folder_is_not_a_lyrics_file(cli, capsys):
    (cli / "words").mkdir()
    line = _refusal(cli, capsys, "--video", "--lyrics", "words")
    assert line == (
        "karaoke-bot: error: argument --lyrics: words: is a folder, not a lyrics file "
        "(.lrc or .txt)"
    )


def test_a_huge_file_is_refused_by_its_size(cli, capsys):
    huge = cli / "huge.lrc"
    with huge.open("wb") as file:
        file.truncate(50_000_000)  # sparse: refused by its size, never read
    line = _refusal(cli, capsys, "--video", "--lyrics", str(huge))
    assert line.startswith(f"karaoke-bot: error: argument --lyrics: {huge}: too big for a ")
    assert ": 50 MB (the limit is 256 KB;" in line


def test_an_endless_file_is_read_only_up_to_the_limit(cli, capsys):
    """``/dev/zero`` says it is empty and never ends: reading it all would hang."""
    line = _refusal(cli, capsys, "--video", "--lyrics", "/dev/zero")
    assert line.endswith("too big for a lyrics file: more than 256 KB (the limit is 256 KB; "
                         "a whole album's .lrc is under 50 KB)")  # fmt: skip


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("cover.lrc", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)) * 8),  # binary
        ("blank.txt", b"\0\x01\x02 \t\r\n\x1b[31m\x7f\n" * 20),  # control characters only
        ("tags.lrc", b"[ar:Someone]\n[ti:Nothing]\n[00:01.00]\n[00:02.00]\n"),  # no words
        ("long.txt", b"a\n" * 100_000),  # 100 000 lines, under the size cap
    ],
)
def test_lyrics_that_cannot_be_used_are_refused_in_one_sentence(cli, capsys, name, content):
    (cli / name).write_bytes(content)
    line = _refusal(cli, capsys, "--video", "--lyrics", name)
    assert line.startswith(f"karaoke-bot: error: argument --lyrics: {name}: ")
    reason = line.split(f"{name}: ", 1)[1]
    assert reason and "\n" not in reason and "Error" not in reason
    assert "message" not in reason  # a chat's "send them as a message" is no terminal's


def test_hostile_but_usable_lyrics_pass_on_to_the_model(cli, capsys):
    """Markup, CRLF and a BOM are text to show, not reasons to refuse: the command goes
    on, to the model (which cannot load here)."""
    hostile = (
        "\ufeff[00:00.50]{\\an8\\fs200}Hello\\N<b>little</b>\r\n"
        "[00:01.80]*world* of {\\k100}songs\r\n"
    )
    (cli / "hostile.lrc").write_text(hostile, encoding="utf-8")
    line = _refusal(cli, capsys, "--video", "--lyrics", "hostile.lrc")
    assert "--lyrics" not in line and MISSING_MODEL in line


def test_untimed_words_are_refused_when_alignment_is_off(cli, capsys):
    Path("config.toml").write_text("[lyrics]\nalignment = false\n")
    Path("words.txt").write_text("Hello little\nworld of songs\n")
    line = _refusal(cli, capsys, "--video", "--lyrics", "words.txt")
    assert line.startswith("karaoke-bot: error: argument --lyrics: words.txt: no times ")
    assert "lyrics.alignment is off" in line


_CHILD = """
import sys
from bot.cli.main import main
code = main(sys.argv[1:])
print("torch imported" if "torch" in sys.modules else "torch never imported")
sys.exit(code)
"""


def test_a_bad_lyrics_file_is_refused_before_torch_is_imported(tmp_path):
    (tmp_path / "song.mp3").write_bytes(b"")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("KARAOKE_CONFIG", None)
    env["KARAOKE_DATA_DIR"] = str(tmp_path / "data")
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, "separate", "song.mp3", "--video", "--lyrics", "x.lrc"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert child.returncode == 2
    assert child.stderr == "karaoke-bot: error: argument --lyrics: x.lrc: no such file\n"
    assert child.stdout.strip() == "torch never imported"


def test_no_lrclib_overrides_the_setting():
    args = build_parser().parse_args(["separate", "song.mp3", "--video", "--no-lrclib"])
    settings = Settings()
    assert settings.lyrics.lrclib is True
    apply_separate_overrides(args, settings)
    assert settings.lyrics.lrclib is False
    args = build_parser().parse_args(["separate", "song.mp3", "--video"])
    settings = Settings()
    apply_separate_overrides(args, settings)
    assert settings.lyrics.lrclib is True  # without the flag, the config decides


def test_the_help_tells_of_the_video(capsys):
    with pytest.raises(SystemExit):
        main(["separate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for words in ("--video", "--lyrics FILE", "--no-lrclib", "<stem> - karaoke.mp4"):
        assert words in out, words


@pytest.mark.parametrize(
    ("controls", "name"),
    [
        (RenderOptions(), "song - karaoke.mp4"),
        (RenderOptions(key=-2), "song - karaoke (key -2).mp4"),
        (RenderOptions(tempo=0.9, guide_db=-12), "song - karaoke (tempo 90%, guide -12 dB).mp4"),
    ],
)
def test_the_video_is_named_like_the_instrumental_it_carries(tmp_path, controls, name):
    path = output_file(tmp_path, "song", "karaoke", "mp4", controls, sound="instrumental")
    assert path == tmp_path / name
    # ...while the vocals' name never mentions the guide vocal it does not carry.
    assert "guide" not in output_file(tmp_path, "song", "vocals", "mp3", controls).name


def test_one_lyrics_file_is_for_one_song(cli, capsys):
    Path("song.lrc").write_text(SYNCED)
    Path("other.mp3").write_bytes(b"")
    line = _refusal(cli, capsys, "other.mp3", "--video", "--lyrics", "song.lrc")
    assert line.startswith("karaoke-bot: error: argument --lyrics: one lyrics file is the ")
