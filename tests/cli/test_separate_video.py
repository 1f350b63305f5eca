"""``separate --video`` writes ``<stem> - karaoke.mp4`` beside the audio files.

The end-to-end test runs everything for real (tiny random model, the pool's video render,
the renderer). The others replace only the pool's video render by a recording stand-in,
so that what the command asks of the pool (the words, where they came from, the
controls) and what it tells the operator are tested on their own; the words come from a
file, the song's tags, or a local fake LRCLIB, never the internet.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from bot.cli.main import main
from bot.cli.separate_video import VideoNotMade, find_words
from bot.cli.video_prep import LyricsFile, VideoPlan
from bot.settings.karaoke import LyricsSettings
from separation.audio.render_options import RenderOptions
from separation.cpu_budget import Lane
from separation.errors import VideoRenderError
from separation.jobs import JobResult, RenderRequest
from separation.lyrics.model import LyricsSource, Timing
from separation.pool.lifecycle import SeparationPool
from separation.video.request import VIDEO, VideoLook
from tests.support import fake_lrclib as fake
from tests.support.media import media_facts

SYNCED = "[00:00.50]Hello little\n[00:01.80]world of songs\n"
SECONDS = 4.0


@pytest.fixture
def song(tmp_path: Path, clip_path: Path, ffmpeg: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Four seconds of the clip, tagged with an artist and a title, in a clean folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KARAOKE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("KARAOKE_CONFIG", raising=False)
    path = tmp_path / "song.flac"
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-t", str(SECONDS), "-i", str(clip_path),
         "-metadata", "artist=The Testers", "-metadata", "title=Hello Song", str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.fixture
def video_renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[RenderRequest]:
    """The pool's video renders, recorded and answered with a stand-in file (timed
    approximately, as aligned words are); audio renders stay real."""
    asked: list[RenderRequest] = []
    real_render = SeparationPool.render

    async def render(pool: SeparationPool, request: RenderRequest) -> JobResult:
        if request.video is None:
            return await real_render(pool, request)
        asked.append(request)
        output = tmp_path / f"stand-in-{len(asked)}.mp4"
        output.write_bytes(b"a stand-in for a video")
        return JobResult(
            {VIDEO: output}, SECONDS, False, None, "video-key", lyrics_timing=Timing.APPROXIMATE
        )

    monkeypatch.setattr(SeparationPool, "render", render)
    return asked


def _tiny(model_repo: Path) -> list[str]:
    return ["--model", "tiny", "--model-repo", str(model_repo), "-o", "out", "--format", "wav"]


def _notes(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("karaoke-bot:")]


def test_without_words_the_audio_is_written_and_the_command_exits_1(
    song, capsys, model_repo, video_renders
):
    assert main(["separate", str(song), "--video", "--no-lrclib", *_tiny(model_repo)]) == 1
    captured = capsys.readouterr()
    assert sorted(path.name for path in Path("out").iterdir()) == [
        "song - instrumental.wav",
        "song - vocals.wav",
    ]
    assert len(captured.out.splitlines()) == 2  # the files written are printed all the same
    assert _notes(captured.err) == [
        f"karaoke-bot: error: {song}: no karaoke video: no words found for it (the song's "
        "tags have no lyrics; lyrics.lrclib is off): give them with --lyrics FILE (an .lrc "
        "with times, or plain text)"
    ]
    assert video_renders == []


def test_a_lyrics_file_becomes_a_video_with_the_same_controls(
    song, capsys, model_repo, video_renders
):
    Path("song.lrc").write_text(SYNCED)
    argv = ["separate", str(song), "--video", "--lyrics", "song.lrc", "--key", "-2"]
    assert main([*argv, *_tiny(model_repo)]) == 0
    captured = capsys.readouterr()
    assert sorted(path.name for path in Path("out").iterdir()) == [
        "song - instrumental (key -2).wav",
        "song - karaoke (key -2).mp4",
        "song - vocals (key -2).wav",
    ]
    assert captured.out.splitlines()[-1] == str(Path("out") / "song - karaoke (key -2).mp4")
    [request] = video_renders
    assert request.options == RenderOptions(key=-2)
    assert request.lane is Lane.FIRST_RESULT
    assert request.video is not None
    assert request.video.lyrics_text.strip() == SYNCED.strip()
    assert request.video.lyrics_source is LyricsSource.USER
    assert (request.video.title, request.video.artist) == ("Hello Song", "The Testers")
    assert _notes(captured.err) == [
        f"karaoke-bot: {song}: the video's words are from song.lrc",
        f"karaoke-bot: {song}: the words had no times; they were timed on the separated "
        "vocals, so the timing is approximate (an .lrc with times, given with --lyrics, is "
        "exact)",
    ]


def test_the_song_s_own_tags_give_the_words(song, capsys, model_repo, video_renders, ffmpeg):
    """A song whose tags hold an LRC needs nothing more: the pool reads the tags when it
    separates the song, and LRCLIB is not asked (it is off here: asking would fail)."""
    tagged = song.with_name("tagged.flac")
    subprocess.run(
        [ffmpeg, "-loglevel", "error", "-i", str(song), "-metadata", f"LYRICS={SYNCED}",
         "-c", "copy", str(tagged)],
        check=True,
    )  # fmt: skip
    argv = ["separate", str(tagged), "--video", "--no-lrclib", *_tiny(model_repo)]
    assert main(argv) == 0
    [request] = video_renders
    assert request.video is not None and request.video.lyrics_source is LyricsSource.TAGS
    assert "Hello little" in request.video.lyrics_text
    assert f"{tagged}: the video's words are from the song's own tags" in capsys.readouterr().err


def test_a_failed_video_leaves_the_audio_and_exits_1(song, capsys, model_repo, monkeypatch):
    real_render = SeparationPool.render

    async def render(pool: SeparationPool, request: RenderRequest) -> JobResult:
        if request.video is None:
            return await real_render(pool, request)
        raise VideoRenderError("ffmpeg could not make the video", stderr="libx264: out of cheese")

    monkeypatch.setattr(SeparationPool, "render", render)
    Path("song.lrc").write_text(SYNCED)
    argv = ["separate", str(song), "--video", "--lyrics", "song.lrc", *_tiny(model_repo)]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert sorted(path.name for path in Path("out").iterdir()) == [
        "song - instrumental.wav",
        "song - vocals.wav",
    ]
    assert len(captured.out.splitlines()) == 2
    assert _notes(captured.err)[-1] == (
        f"karaoke-bot: error: {song}: no karaoke video: ffmpeg could not make the video"
    )
    assert "cheese" not in captured.err  # ffmpeg's own words are for the log (-v)


def _separated(**fields: object) -> JobResult:
    """A separation's result as the pool gives it: its tags, the words in them."""
    values: dict[str, object] = {
        "outputs": {},
        "duration_seconds": 200.0,
        "cache_hit": False,
        "bitrate_kbps": None,
        "cache_key": "song-key",
        "input_tags": {"artist": "The Testers", "title": "Hello Song", "album": "Tests"},
    }
    return JobResult(**{**values, **fields})  # type: ignore[arg-type]


_NO_FILE = VideoPlan(VideoLook(), align=True, speech_model=True, lyrics_file=None)


def test_the_lyrics_file_wins_over_the_tags():
    plan = VideoPlan(
        VideoLook(), align=True, speech_model=True, lyrics_file=LyricsFile(Path("mine.lrc"), SYNCED)
    )
    words = asyncio.run(
        find_words(_separated(tag_lyrics="[00:09.00]other"), LyricsSettings(), plan)
    )
    assert (words.text, words.source) == (SYNCED, LyricsSource.USER)


async def test_the_tags_come_before_lrclib():
    async with fake.running_fake_lrclib() as lrclib:
        settings = LyricsSettings(lrclib_url=lrclib.base_url)
        words = await find_words(_separated(tag_lyrics=SYNCED), settings, _NO_FILE)
        assert (words.text.strip(), words.source) == (SYNCED.strip(), LyricsSource.TAGS)
        assert lrclib.requests == []  # the song's own words: nobody is asked
        settings = LyricsSettings(lrclib_url=lrclib.base_url, from_tags=False)
        with pytest.raises(VideoNotMade, match=r"\(lyrics.from_tags is off; LRCLIB does not"):
            await find_words(_separated(tag_lyrics=SYNCED), settings, _NO_FILE)


async def test_lrclib_is_asked_by_the_song_s_tags_and_length():
    async with fake.running_fake_lrclib() as lrclib:
        lrclib.add(
            fake.Track(artist="The Testers", title="Hello Song", duration=200, synced=SYNCED)
        )
        settings = LyricsSettings(lrclib_url=lrclib.base_url)
        words = await find_words(_separated(), settings, _NO_FILE)
    assert (words.text.strip(), words.source) == (SYNCED.strip(), LyricsSource.LRCLIB)
    assert words.origin == "from LRCLIB (lyrics.lrclib_url)"
    asked = lrclib.requests[0]
    assert asked.path == "/api/get"
    assert asked.query["artist_name"] == "The Testers"
    assert asked.query["track_name"] == "Hello Song"
    assert float(asked.query["duration"]) == pytest.approx(200, abs=1)


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("nothing", "LRCLIB does not know the song"),
        ("instrumental", "LRCLIB lists it as an instrumental"),
        ("broken", "LRCLIB could not be asked ("),
        ("untagged", "the song has no artist and title tags to look it up on LRCLIB"),
    ],
)
async def test_without_words_from_lrclib_the_operator_is_told_why(setup, reason):
    separated = _separated(input_tags={}) if setup == "untagged" else _separated()
    async with fake.running_fake_lrclib() as lrclib:
        if setup == "instrumental":
            lrclib.add(fake.Track("The Testers", "Hello Song", 200, instrumental=True))
        elif setup == "broken":
            for path in (fake.GET, fake.SEARCH):
                lrclib.misbehave(path, fake.Raw(500, b"{}"))
        settings = LyricsSettings(lrclib_url=lrclib.base_url)
        with pytest.raises(VideoNotMade) as refused:
            await find_words(separated, settings, _NO_FILE)
    sentence = str(refused.value)
    assert sentence.startswith("no words found for it (the song's tags have no lyrics; ")
    assert reason in sentence and sentence.endswith("give them with --lyrics FILE (an .lrc "
                                                    "with times, or plain text)")  # fmt: skip
    if setup == "untagged":
        assert lrclib.requests == []


async def test_lrclib_words_through_the_command(song, model_repo, capsys, video_renders):
    """The whole command with a config naming the (fake) service: its words make the
    video, and nothing but the configured base URL is asked."""
    async with fake.running_fake_lrclib() as lrclib:
        lrclib.add(fake.Track("The Testers", "Hello Song", SECONDS, synced=SYNCED))
        config = f'[lyrics]\nlrclib_url = "{lrclib.base_url}"\n'
        await asyncio.to_thread(Path("config.toml").write_text, config)
        argv = ["separate", str(song), "--video", *_tiny(model_repo)]
        assert await asyncio.to_thread(main, argv) == 0  # main runs its own event loop
    [request] = video_renders
    assert request.video is not None and request.video.lyrics_source is LyricsSource.LRCLIB
    assert {asked.path for asked in lrclib.requests} <= {fake.GET, fake.SEARCH}
    assert f"{song}: the video's words are from LRCLIB" in capsys.readouterr().err


def test_a_karaoke_video_end_to_end(song, capsys, model_repo, ffmpeg):
    """Real all the way: words from an .lrc, the tiny model, the pool's video render at
    tempo 0.8; the video is as long as the slowed-down instrumental beside it."""
    Path("song.lrc").write_text(SYNCED)
    argv = ["separate", str(song), "--video", "--lyrics", "song.lrc", "--tempo", "0.8"]
    assert main([*argv, *_tiny(model_repo)]) == 0
    video = Path("out") / "song - karaoke (tempo 80%).mp4"
    instrumental = Path("out") / "song - instrumental (tempo 80%).wav"
    video_seconds, streams = media_facts(video, ffmpeg)
    audio_seconds, _ = media_facts(instrumental, ffmpeg)
    assert audio_seconds == pytest.approx(SECONDS / 0.8, abs=0.1)
    assert video_seconds == pytest.approx(audio_seconds, abs=0.1)
    assert "Video: h264" in streams and "Audio: aac" in streams
    assert f"{song}: the video's words are from song.lrc" in capsys.readouterr().err
