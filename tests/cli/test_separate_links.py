"""``karaoke-bot separate URL``: a link is fetched through the egress guard, then separated
like a file; a refused link is one line naming its site, and the other inputs still run.

The links point at a local server (``tests.support.link_servers``) on 127.0.0.1, reached
only where the test's config allows 127.0.0.0/8 and the server's port, as an operator
would allow a network; the songs are separated by the tiny random model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from bot.cli import messages
from bot.cli.main import main
from bot.cli.separate_links import _named
from bot.links.classify import parse_link
from bot.links.errors import LINK_ERROR_KINDS
from bot.links.fetch import FetchedLink
from tests.support.link_server_thread import link_server_in_a_thread
from tests.support.link_servers import LinkServer, page_with_audio, page_with_video_object
from tests.support.media import make_tone


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean folder to run in, whose own temporary folder shows what a run left."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KARAOKE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("KARAOKE_CONFIG", raising=False)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return tmp_path


@pytest.fixture
def server(cli: Path, ffmpeg: str):
    song = make_tone(cli / "tone.mp3", ffmpeg, seconds=3).read_bytes()
    with link_server_in_a_thread() as running:
        running.add_media("song.mp3", song)
        yield running


def _config(cli: Path, server: LinkServer, links: str = "") -> list[str]:
    """``--config`` of a file allowing the server's network and port (plus ``links``)."""
    path = cli / "config.toml"
    path.write_text(
        f'[links]\nallowed_networks = ["127.0.0.0/8"]\nallowed_ports = [{server.port}]\n{links}'
    )
    return ["--config", str(path)]


def _tiny(model_repo: Path) -> list[str]:
    return ["--model", "tiny", "--model-repo", str(model_repo), "-o", "out", "--format", "flac"]


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("karaoke-bot: error:")]


def _written(cli: Path) -> list[str]:
    out = cli / "out"
    return sorted(path.name for path in out.iterdir()) if out.exists() else []


def test_a_direct_link_allowed_by_the_config_is_separated(cli, server, capsys, model_repo):
    url = server.url("/media/song.mp3")
    argv = ["separate", url, url, *_config(cli, server), *_tiny(model_repo)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert _written(cli) == ["song - instrumental.flac", "song - vocals.flac"]
    assert len(captured.out.splitlines()) == 2
    assert _errors(captured.err) == []
    assert server.requests["/media/song.mp3"] == 1  # the same link twice: fetched once
    assert list((cli / "tmp").iterdir()) == []  # the private folder went with the run


def test_with_default_settings_a_local_link_is_refused_and_the_file_still_runs(
    cli, server, capsys, model_repo, clip_path
):
    argv = ["separate", server.url("/media/song.mp3"), str(clip_path), *_tiny(model_repo)]
    assert main(argv) == 1
    captured = capsys.readouterr()
    refusal = "karaoke-bot: error: " + messages.link_refused("127.0.0.1", "refused_address")
    assert _errors(captured.err) == [refusal]
    # One line: the guard's own log lines (naming the port) are for -v.
    assert [line for line in captured.err.splitlines() if "127.0.0.1" in line] == [refusal]
    assert server.requests == {}  # the guard refused it: not one connection reached it
    assert _written(cli) == [
        "demucs-test-clip - instrumental.flac",
        "demucs-test-clip - vocals.flac",
    ]


def test_a_six_hour_item_by_metadata_is_refused_before_any_media(cli, server, capsys, model_repo):
    server.add_media("long.mp3", b"\0" * 1000)
    page = server.add_page(
        "long", page_with_video_object(server.url("/media/long.mp3"), duration="PT6H")
    )
    config = _config(cli, server, "generic_extractor = true\n")
    assert main(["separate", page, *config, *_tiny(model_repo)]) == 1
    assert _errors(capsys.readouterr().err) == [
        "karaoke-bot: error: " + messages.link_refused("127.0.0.1", "too_long")
    ]
    assert server.requests["/page/long"] >= 1
    assert server.media_requests() == 0
    assert _written(cli) == []  # nothing to separate: OUTDIR is not even created


def test_a_site_s_song_is_named_after_its_title(cli, server, capsys, model_repo):
    page = server.add_page("song", page_with_audio("/media/song.mp3", title="Local song"))
    config = _config(cli, server, "generic_extractor = true\n")
    assert main(["separate", page, *config, *_tiny(model_repo)]) == 0
    assert _errors(capsys.readouterr().err) == []
    written = _written(cli)
    assert len(written) == 2 and all(name.startswith("Local song") for name in written)
    assert written[0].endswith(" - instrumental.flac")
    assert server.requests["/media/song.mp3"] == 1


def test_links_turned_off_are_one_line_and_no_request(cli, server, capsys, model_repo):
    config = _config(cli, server, "enabled = false\n")
    assert main(["separate", server.url("/media/song.mp3"), *config, *_tiny(model_repo)]) == 1
    assert _errors(capsys.readouterr().err) == [
        "karaoke-bot: error: link to 127.0.0.1: links are turned off (links.enabled = false)"
    ]
    assert server.requests == {}


def test_another_scheme_is_refused_as_a_link_not_looked_for_on_disk(cli, capsys, model_repo):
    assert main(["separate", "ftp://files.example/song.mp3", *_tiny(model_repo)]) == 1
    assert _errors(capsys.readouterr().err) == [
        "karaoke-bot: error: " + messages.link_refused(None, "bad_link")
    ]


def test_video_with_a_link_names_the_link_by_its_site_and_name(cli, server, capsys, model_repo):
    argv = ["separate", server.url("/media/song.mp3"), "--video", "--no-lrclib"]
    assert main([*argv, *_config(cli, server), *_tiny(model_repo)]) == 1
    captured = capsys.readouterr()
    assert _written(cli) == ["song - instrumental.flac", "song - vocals.flac"]
    assert _errors(captured.err) == [
        "karaoke-bot: error: 127.0.0.1/song.mp3: no karaoke video: no words found for it "
        "(the song's tags have no lyrics; lyrics.lrclib is off): give them with --lyrics "
        "FILE (an .lrc with times, or plain text)"
    ]


def test_every_refusal_has_its_own_sentence():
    lines = {messages.link_refused("example.com", kind) for kind in LINK_ERROR_KINDS}
    assert len(lines) == len(LINK_ERROR_KINDS)
    for kind in LINK_ERROR_KINDS:  # none falls back to the bare kind
        assert f"link to example.com: {kind}" not in lines


@pytest.mark.parametrize(
    ("url", "title", "file_name", "stem", "suffix"),
    [
        ("http://h.example/a/My%20Song.mp3?token=secret", None, "download", "My Song", ".mp3"),
        ("http://h.example/watch?v=a", "Mr. Brightside", "media.m4a", "Mr. Brightside", ".m4a"),
        ("http://h.example/a/%2E%2E%2Fetc%2Fpasswd.mp3", None, "direct-download", "passwd", ".mp3"),
        ("http://h.example/x.mp3", "../../etc: a/b?\u202e\x00", "media.webm", "etc a b", ".webm"),
        ("http://h.example/", None, "direct-download", "h.example", ""),
    ],
)  # fmt: skip
def test_a_fetched_link_is_named_safely(tmp_path, url, title, file_name, stem, suffix):
    """By the site's title, else the link's last path segment; never its query, a path
    character or an invisible one; the label names the site."""
    file = tmp_path / file_name
    link = parse_link(url)
    named = _named(link, FetchedLink(path=file, site=link.host, source_key="k", title=title), file)
    assert named.stem == stem
    assert named.label == Path("h.example") / f"{stem}{suffix}"
    assert named.file == file
