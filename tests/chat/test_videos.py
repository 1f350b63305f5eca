"""Karaoke videos asked of a finished song, through the chat flow on the real store: the
words come from the job (its tags, its user, LRCLIB) or are asked for once; a video is
rendered, refused and delivered by the karaoke controls' path, with its own rate; a
stranger gets nothing. The backend is a recorder at its boundary (what it was asked,
what it answers): the video renderer itself is tested in ``tests/video``."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.chat.conversation import messages
from bot.chat.conversation.controls import (
    MAX_ENCODED_LENGTH,
    BadControlError,
    ControlState,
    buttons,
    current_state,
)
from bot.chat.conversation.flow import ChatFlow
from bot.chat.conversation.types import ChatUser, LyricsUpload, OutgoingFile
from bot.chat.conversation.videos import KaraokeVideos
from bot.process.wiring import flow_config
from bot.settings import Settings
from separation.audio.render_options import RenderOptions
from separation.errors import (
    LyricsInputError,
    LyricsServiceError,
    OutputTooLargeError,
    RendersBusyError,
    StemsExpiredError,
)
from separation.jobs import JobResult, RenderRequest
from separation.lyrics.lrclib import LrclibLyrics
from separation.lyrics.model import LyricsSource, Timing
from separation.lyrics.parse import clean_lyrics_text
from separation.video.request import VIDEO, VideoLook
from storage.records import new_control_token
from storage.store import Store
from tests.support.chat import CHAT, USER, RecordingReplier, upload_of
from tests.support.store import job_request, quota_limits

LRC = "[00:01.00]Hello little star\n[00:04.00]How I wonder\n"
STRANGER = ChatUser("telegram", "2", "Eve")
LOOK = VideoLook(width=640, height=360)


@dataclass
class _VideoBackend:
    """The backend's boundary: records each render asked, answers with a made file (or
    raises ``error``); its cache holds what it rendered."""

    folder: Path
    timing: Timing = Timing.LINE
    error: Exception | None = None
    asked: list[RenderRequest] = field(default_factory=list)
    rendered: set[tuple[str, str, str]] = field(default_factory=set)

    @staticmethod
    def _key(request: RenderRequest) -> tuple[str, str, str]:
        token = request.video.cache_token() if request.video else ""
        return request.cache_key, request.options.cache_token(), token

    async def cached_render(self, request: RenderRequest) -> JobResult | None:
        return self._result(request, hit=True) if self._key(request) in self.rendered else None

    async def render(self, request: RenderRequest) -> JobResult:
        self.asked.append(request)
        if self.error is not None:
            raise self.error
        self.rendered.add(self._key(request))
        return self._result(request, hit=False)

    def _result(self, request: RenderRequest, *, hit: bool) -> JobResult:
        path = self.folder / f"render-{len(self.asked)}.mp4"
        path.write_bytes(b"\0\0\0\x18ftypmp42")
        name = VIDEO if request.video else "instrumental"
        timing = self.timing.value if request.video else None
        return JobResult({name: path}, 6.0 / request.options.tempo, hit, None,
                         request.cache_key, lyrics_timing=timing)  # fmt: skip


@dataclass
class _Lrclib:
    """A lyrics service: answers ``found`` (or raises ``error``) and counts questions."""

    found: LrclibLyrics | None = None
    error: Exception | None = None
    asked: list[dict[str, Any]] = field(default_factory=list)

    async def find(self, **query: Any) -> LrclibLyrics | None:
        self.asked.append(query)
        if self.error is not None:
            raise self.error
        return self.found


@dataclass
class _Setup:
    flow: ChatFlow
    backend: _VideoBackend
    lrclib: _Lrclib
    token: str
    job_id: int


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'k.db'}", tmp_path / "data")
    try:
        yield store
    finally:
        await store.close()


async def _setup(
    store: Store, tmp_path: Path, *, per_hour: int = 10, lrclib: _Lrclib | None = None, **kw: Any
) -> _Setup:
    """A finished song of ``USER`` (credits noted, no words) and a flow over a recorder."""
    settings = Settings.model_validate({"general": {"data_dir": str(tmp_path / "data")}})
    config = dataclasses.replace(flow_config(settings), video_look=LOOK, videos_per_hour=per_hour)
    backend = _VideoBackend(tmp_path, **kw)
    lrclib = lrclib or _Lrclib()
    flow = ChatFlow(
        store=store,
        backend=backend,  # type: ignore[arg-type]  # a RenderingBackend, no submit
        config=config,
        video_limiter=KaraokeVideos.per_hour_limiter(per_hour),
        lyrics_service=lrclib,
    )
    user = await store.users.upsert("telegram", USER.user_id, "Ann")
    job = await store.jobs.reserve(user, job_request(seconds=6.0), quota_limits())
    await store.jobs.mark_running(job.id)
    await store.jobs.mark_done(job.id, cache_hit=False, cache_key="c" * 64)
    await store.lyrics.note_song(job.id, title="Twinkle", artist="Trad")
    assert job.control_token is not None
    return _Setup(flow, backend, lrclib, job.control_token, job.id)


def _video_state(token: str, **options: Any) -> ControlState:
    return ControlState(token, RenderOptions(**options), video=True)


def test_video_data_round_trips_old_data_means_audio_and_both_fit():
    token = new_control_token()
    state = ControlState(token, RenderOptions(key=-6, tempo=1.5, guide_db=-12.345678), True)
    assert state.encode().endswith(":v") and len(state.encode()) <= MAX_ENCODED_LENGTH
    assert ControlState.decode(state.encode()) == state
    assert ControlState.decode(f"kc:{token}:0:100:-").video is False
    for forged in (f"kc:{token}:0:100:-:V", f"kc:{token}:0:100:-:video", f"kc:{token}:0:100:-:"):
        with pytest.raises(ValueError):
            ControlState.decode(forged)


@pytest.mark.parametrize("video", [False, True])
@pytest.mark.parametrize("video_available", [False, True])
def test_the_state_a_result_is_in_is_read_back_from_its_buttons(video, video_available):
    """Each button names the state a press asks for; the result's own state is what most
    of them agree on, at the edges of every range too (buttons left out there)."""
    token = new_control_token()
    for key in (-6, -1, 0, 6):
        for tempo in (0.5, 0.8, 1.0, 1.5):
            for guide in (None, -12.0):
                state = ControlState(token, RenderOptions(key, tempo, guide), video)
                rows = buttons(state, video_available=video_available)
                data = [button.data for row in rows for button in row]
                assert current_state(data) == state
    question = _video_state(token, key=-2)
    assert current_state([question.encode()]) == question
    other = ControlState(new_control_token(), RenderOptions())
    with pytest.raises(BadControlError):
        current_state([question.encode(), other.encode()])
    with pytest.raises(BadControlError):
        current_state([])


async def test_the_button_makes_a_video_of_the_tags_words_and_its_buttons_make_videos(
    store, tmp_path
):
    setup = await _setup(store, tmp_path)
    await store.lyrics.put(setup.job_id, LRC, "tags")
    replier = RecordingReplier()
    await setup.flow.rerender.press(USER, replier, _video_state(setup.token).encode())
    [request] = setup.backend.asked
    assert request.video is not None and request.options == RenderOptions()
    assert (request.video.lyrics_text, request.video.lyrics_source) == (LRC, LyricsSource.TAGS)
    assert (request.video.title, request.video.artist, request.video.look) == (
        "Twinkle", "Trad", LOOK
    )  # fmt: skip
    assert request.max_output_bytes == replier.plan.max_file_bytes
    assert replier.texts == [
        messages.VIDEO_RENDERING,
        "Here is your karaoke video (words from the song's tags):",
    ]
    [video] = replier.files
    assert (video.is_video, video.width, video.height) == (True, 640, 360)
    assert (video.title, video.performer) == ("Twinkle (Karaoke video)", "Trad")
    labels = [button.label for row in video.controls or [] for button in row]
    assert messages.CONTROL_VIDEO not in labels
    data = [button.data for row in video.controls or [] for button in row]
    assert data and all(ControlState.decode(d).video for d in data)
    assert setup.lrclib.asked == []  # the job had the words

    replier = RecordingReplier()
    key_down = next(d for d in data if ControlState.decode(d).options.key == -1)
    await setup.flow.rerender.press(USER, replier, key_down)
    assert setup.backend.asked[-1].options == RenderOptions(key=-1)
    assert setup.backend.asked[-1].video == request.video
    assert replier.files[0].is_video and replier.texts[-1].startswith(
        "Here is your karaoke video, \N{MINUS SIGN}1 key ("
    )


async def test_no_words_asks_once_with_a_button_and_costs_no_video(store, tmp_path):
    setup = await _setup(store, tmp_path, per_hour=1)
    replier = RecordingReplier()
    for _ in range(2):
        await setup.flow.rerender.press(USER, replier, _video_state(setup.token).encode())
    assert replier.texts == [messages.ASK_FOR_LYRICS] * 2 and replier.files == []
    assert setup.backend.asked == []
    [button] = replier.buttons[0][0]
    assert button.label == messages.CONTROL_VIDEO
    assert ControlState.decode(button.data) == _video_state(setup.token)
    assert (
        setup.lrclib.asked
        == [{"artist": "Trad", "title": "Twinkle", "album": None, "duration_seconds": 6.0}] * 2
    )  # asked each time: it may have the words by now

    await setup.flow.lyrics_reply(USER, replier, setup.token, LyricsUpload(LRC.encode()))
    assert setup.backend.asked[0].video is not None  # the one video of the hour
    assert setup.backend.asked[0].video.lyrics_source is LyricsSource.USER


async def test_pasted_words_are_kept_and_their_approximate_timing_is_said(store, tmp_path):
    setup = await _setup(store, tmp_path, timing=Timing.APPROXIMATE)
    replier = RecordingReplier()
    await setup.flow.lyrics_reply(
        USER, replier, setup.token, LyricsUpload("Hello little star\nHow I wonder"),
        options=RenderOptions(tempo=0.8),
    )  # fmt: skip
    [request] = setup.backend.asked
    assert request.options == RenderOptions(tempo=0.8) and request.video is not None
    kept = await store.lyrics.get(setup.job_id)
    assert kept is not None and kept.source == "user" and "How I wonder" in (kept.text or "")
    assert replier.texts[-1] == (
        "Here is your karaoke video, 80% (words from your lyrics; the timing is approximate):"
    )
    assert replier.files[0].duration_seconds == pytest.approx(7.5)

    # The next press uses the kept words: nobody is asked.
    await setup.flow.rerender.press(USER, RecordingReplier(), _video_state(setup.token).encode())
    assert setup.backend.asked[-1].video.lyrics_text == kept.text  # type: ignore[union-attr]
    assert setup.lrclib.asked == []


async def test_unusable_lyrics_are_refused_in_one_sentence_and_not_kept(store, tmp_path):
    setup = await _setup(store, tmp_path)
    with pytest.raises(LyricsInputError) as refused:
        clean_lyrics_text(b"  \r\n ")
    replier = RecordingReplier()
    await setup.flow.lyrics_reply(USER, replier, setup.token, LyricsUpload(b"  \r\n ", "x.lrc"))
    assert replier.texts == [refused.value.user_message] and setup.backend.asked == []
    assert (await store.lyrics.get(setup.job_id)).text is None  # type: ignore[union-attr]


async def test_a_strangers_press_or_lyrics_are_refused_like_any_press(store, tmp_path):
    setup = await _setup(store, tmp_path)
    replier = RecordingReplier()
    await setup.flow.rerender.press(STRANGER, replier, _video_state(setup.token).encode())
    await setup.flow.lyrics_reply(STRANGER, replier, setup.token, LyricsUpload(LRC))
    await setup.flow.video_command(STRANGER, replier, setup.token)
    assert replier.texts == [messages.CONTROL_UNKNOWN] * 3
    assert replier.buttons == [] and setup.backend.asked == [] and setup.lrclib.asked == []
    assert (await store.lyrics.get(setup.job_id)).text is None  # type: ignore[union-attr]


async def test_lrclib_words_are_kept_so_a_second_press_does_not_ask_again(store, tmp_path):
    lrclib = _Lrclib(found=LrclibLyrics(LRC, synced=True, instrumental=False))
    setup = await _setup(store, tmp_path, lrclib=lrclib)
    for _ in range(2):
        replier = RecordingReplier()
        await setup.flow.rerender.press(USER, replier, _video_state(setup.token).encode())
        assert replier.texts[-1] == "Here is your karaoke video (words from LRCLIB):"
    assert len(lrclib.asked) == 1
    [request] = setup.backend.asked  # the second press: the same video, from the cache
    assert request.video is not None and request.video.lyrics_source is LyricsSource.LRCLIB


@pytest.mark.parametrize(
    "lrclib",
    [
        _Lrclib(error=LyricsServiceError("timeout", "took longer than 10 s")),
        _Lrclib(found=LrclibLyrics("", synced=False, instrumental=True)),
        _Lrclib(found=None),
    ],
    ids=["failing", "instrumental", "not-found"],
)
async def test_no_usable_answer_from_lrclib_asks_the_user(store, tmp_path, lrclib):
    setup = await _setup(store, tmp_path, lrclib=lrclib)
    replier = RecordingReplier()
    await setup.flow.rerender.press(USER, replier, _video_state(setup.token).encode())
    assert replier.texts == [messages.ASK_FOR_LYRICS] and setup.backend.asked == []


async def test_videos_have_their_own_rate_and_admins_are_exempt(store, tmp_path):
    setup = await _setup(store, tmp_path, per_hour=2)
    await store.lyrics.put(setup.job_id, LRC, "user")
    replier = RecordingReplier()
    for key in (0, 1, 2):
        await setup.flow.rerender.press(USER, replier, _video_state(setup.token, key=key).encode())
    assert len(setup.backend.asked) == 2
    assert replier.texts[-1] == messages.videos_used(2, 30 * 60)
    assert replier.texts[-1].startswith("That's all the videos I can make for you for now")
    admin = dataclasses.replace(USER, is_admin=True)
    await setup.flow.rerender.press(admin, replier, _video_state(setup.token, key=3).encode())
    assert len(setup.backend.asked) == 3


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (StemsExpiredError("c" * 64), StemsExpiredError("c" * 64).user_message),
        (RendersBusyError(retry_after_seconds=4.2), "try again in 5 s"),
        (
            OutputTooLargeError(duration_seconds=6.0, budget_bytes=50_000_000, min_bitrate=0),
            "upload limit (50 MB per file)",
        ),
    ],
    ids=["stems-expired", "busy", "too-large"],
)
async def test_a_refused_video_is_explained_like_a_refused_render(store, tmp_path, error, said):
    setup = await _setup(store, tmp_path, error=error)
    await store.lyrics.put(setup.job_id, LRC, "user")
    replier = RecordingReplier()
    await setup.flow.rerender.press(USER, replier, _video_state(setup.token).encode())
    assert replier.texts[0] == messages.VIDEO_RENDERING and said in replier.texts[-1]
    assert replier.files == []


async def test_video_command_makes_the_latest_songs_video_or_says_how(store, tmp_path):
    setup = await _setup(store, tmp_path)
    await store.lyrics.put(setup.job_id, LRC, "user")
    replier = RecordingReplier()
    await setup.flow.video_command(USER, replier, None)
    assert replier.files and replier.files[0].is_video
    nobody = ChatUser("telegram", "77", "Nobody")
    await setup.flow.video_command(nobody, replier, None)
    assert replier.texts[-1] == messages.VIDEO_NEEDS_A_SONG


async def test_a_delivered_song_keeps_its_credits_and_shows_the_video_button(flow, song):
    """The real pool: the first delivery notes what its videos will be titled."""
    replier = RecordingReplier()
    job = await flow.handle_song(USER, CHAT, replier, upload_of(song))
    assert job is not None and job.status == "done"
    kept = await flow._store.lyrics.get(job.id)
    assert kept is not None and (kept.title, kept.text) == ("clip", None)
    instrumental = replier.files[0]
    assert instrumental.controls is not None and not instrumental.is_video
    [video_button] = instrumental.controls[-1]
    assert video_button.label == messages.CONTROL_VIDEO
    assert ControlState.decode(video_button.data) == ControlState(
        job.control_token or "", RenderOptions(), video=True
    )


class _SmallerThanItsPlan(RecordingReplier):
    """A platform that refuses an upload its own plan allowed (Telegram's 413)."""

    async def send_files(self, files: list[OutgoingFile]) -> None:
        raise OutputTooLargeError(duration_seconds=6.0, budget_bytes=10, min_bitrate=0)


async def test_a_video_the_platform_refuses_as_too_big_is_explained(store, tmp_path):
    setup = await _setup(store, tmp_path)
    await store.lyrics.put(setup.job_id, LRC, "user")
    replier = _SmallerThanItsPlan()
    await setup.flow.rerender.press(USER, replier, _video_state(setup.token).encode())
    assert "upload limit" in replier.texts[-1] and replier.files == []


async def test_lyrics_for_the_latest_song_are_kept_and_make_its_video(store, tmp_path):
    setup = await _setup(store, tmp_path)
    replier = RecordingReplier()
    await setup.flow.lyrics_for_latest(USER, replier, LyricsUpload(LRC.encode(), "song.lrc"))
    kept = await store.lyrics.get(setup.job_id)
    assert kept is not None and (kept.source, kept.text) == ("user", clean_lyrics_text(LRC))
    [request] = setup.backend.asked
    assert request.video is not None and request.video.lyrics_text == clean_lyrics_text(LRC)
    assert replier.files and replier.files[0].is_video

    nobody = ChatUser("telegram", "77", "Nobody")
    await setup.flow.lyrics_for_latest(nobody, replier, LyricsUpload(LRC))
    assert replier.texts[-1] == messages.VIDEO_NEEDS_A_SONG and len(setup.backend.asked) == 1


async def test_unusable_lyrics_sent_with_a_song_refuse_it_before_it_starts(store, tmp_path):
    setup = await _setup(store, tmp_path)
    with pytest.raises(LyricsInputError) as refused:
        clean_lyrics_text(b"  \r\n ")
    replier = RecordingReplier()
    file = tmp_path / "song.mp3"
    file.write_bytes(b"ID3" + bytes(1000))  # never downloaded
    song = dataclasses.replace(upload_of(file), lyrics=LyricsUpload(b"  \r\n ", "x.lrc"))
    assert await setup.flow.handle_song(USER, CHAT, replier, song) is None
    assert replier.texts == [refused.value.user_message]  # no "Downloading...": not started
    assert await store.intake.pending() == []


async def test_lyrics_sent_with_a_song_are_kept_with_its_job_over_its_tags(flow, song):
    """The real pool: ``/karaoke lyrics:`` keeps the words before the song is separated."""
    with_bom = LyricsUpload(b"\xef\xbb\xbf" + LRC.encode(), "song.lrc")  # kept cleaned
    upload = dataclasses.replace(upload_of(song), lyrics=with_bom)
    job = await flow.handle_song(USER, CHAT, RecordingReplier(), upload)
    assert job is not None and job.status == "done"
    kept = await flow._store.lyrics.get(job.id)
    assert kept is not None and (kept.source, kept.title) == ("user", "clip")
    assert kept.text == clean_lyrics_text(LRC)
    videos = flow.rerender.videos
    assert videos is not None
    await videos.finder.note_delivery(job, title="clip", artist=None, tag_lyrics="Tag words")
    again = await flow._store.lyrics.get(job.id)  # delivered again: still the user's
    assert again is not None and (again.source, again.text) == ("user", kept.text)
