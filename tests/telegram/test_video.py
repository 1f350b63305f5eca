"""Karaoke videos on Telegram, through the real python-telegram-bot objects against the
fake Bot API and the real pool with the tiny model: the "Lyrics video" button, the
question for the words and a reply to it, lyrics pasted or sent as a file in reply to a
result, ``/video``, a stranger's press, a restart, tempo, LRCLIB (its local fake) and the
videos' own rate. The video itself is made by ``separation.video`` (tested there); here
what matters is what the user sends and sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.chat.conversation import messages
from bot.chat.conversation.controls import ControlState
from bot.chat.conversation.types import MAX_LYRICS_DOWNLOAD_BYTES
from tests.support.fake_bot_api import RecordedCall
from tests.support.media import decode_bytes
from tests.support.telegram_bot import USER_ID, TelegramHarness, restart_bot

STRANGER = 5151
LRC = "[00:00.50]Twinkle twinkle little star\n[00:03.00]How I wonder what you are\n"
SMALL = {"video": {"width": 320, "height": 240, "fps": 5}}
"""Videos as small as the settings allow: the tests are about the chat, not the pixels."""
VIDEO_BOT = {"settings": SMALL}


async def _instrumental(bot: TelegramHarness, **song: str) -> RecordedCall:
    await bot.send_song("clip.mp3", **song)
    await bot.wait_for_done()
    return bot.audio_uploads()[0]


def _question(bot: TelegramHarness, mark: int) -> RecordedCall:
    return next(
        c
        for c in bot.api.calls[mark:]
        if c.method == "sendMessage" and c.params.get("text") == messages.ASK_FOR_LYRICS
    )


async def _reply_with_file(
    bot: TelegramHarness, to: RecordedCall, path: Path, *, user_id: int = USER_ID, **doc: object
) -> int:
    mark = bot.mark()
    attachment = bot.api.audio_attachment(
        path, kind="document", mime_type="text/plain", file_name=path.name, **doc
    )
    await bot.send(
        user_id=user_id, chat_id=user_id, reply_to=bot.api.sent_message(to), **attachment
    )
    return mark


def _assert_video_message(bot: TelegramHarness, video: RecordedCall) -> None:
    """A streamable video of the configured size, its controls each asking for a video."""
    params = video.params
    assert str(params["supports_streaming"]).lower() == "true"
    assert (int(params["width"]), int(params["height"])) == (320, 240)
    assert "video" in video.files and video.files["video"][1][4:8] == b"ftyp"
    rows = params["reply_markup"]["inline_keyboard"]
    assert all(ControlState.decode(b["callback_data"]).video for row in rows for b in row)
    assert messages.CONTROL_VIDEO not in [b["text"] for row in rows for b in row]


def _seconds(video: RecordedCall, ffmpeg: str, tmp_path: Path) -> float:
    """The length of the uploaded video's sound track."""
    name, content = video.files["video"]
    return decode_bytes(content, name, ffmpeg, tmp_path).duration_seconds


# -- needs the merge: the pool renders videos (H4 + H5) ---------------------------------------
@pytest.mark.parametrize("telegram_bot", [VIDEO_BOT], indirect=True)
async def test_the_button_asks_for_the_words_then_a_reply_with_an_lrc_makes_a_video(
    telegram_bot, tmp_path, ffmpeg
):
    bot = telegram_bot
    instrumental = await _instrumental(bot)
    mark = bot.press(instrumental, messages.CONTROL_VIDEO)
    await bot.wait_for_text(messages.ASK_FOR_LYRICS, since=mark)
    question = _question(bot, mark)
    [[button]] = question.params["reply_markup"]["inline_keyboard"]
    assert ControlState.decode(button["callback_data"]).video
    assert bot.api.calls_to("sendVideo") == []

    lrc = tmp_path / "twinkle.lrc"
    lrc.write_text(LRC)
    mark = await _reply_with_file(bot, question, lrc)
    [video] = await bot.uploads_after(mark, 1, "sendVideo")
    _assert_video_message(bot, video)
    assert video.params["caption"] == "clip (Karaoke video)"
    shown = bot.api.texts_in_chat(USER_ID, since=mark)
    assert shown[-1] == "Here is your karaoke video (words from your lyrics):"
    assert abs(_seconds(video, ffmpeg, tmp_path) - 6.0) < 0.2
    assert await bot.songs_used() == 1  # a video costs no song


@pytest.mark.parametrize("telegram_bot", [VIDEO_BOT], indirect=True)
async def test_pasted_words_in_reply_are_kept_and_timed_on_the_vocals_or_refused_in_a_sentence(
    telegram_bot,
):
    """Plain words pasted in reply to the instrumental are kept as the user's and sent to
    be timed on the separated vocals. The tiny test model's "vocals" are a constant hum
    (measured: -32 dB throughout, no phrase to find), so the timing cannot be found and
    the user is told so in one sentence, with nothing sent; a video timed approximately
    (and the reply saying so) is ``tests/chat/test_videos.py``'s, and the timing itself
    ``tests/separation/lyrics``'."""
    from separation.lyrics.alignment import NoSingingFoundError

    bot = telegram_bot
    instrumental = await _instrumental(bot)
    mark = bot.mark()
    await bot.send(text="Twinkle twinkle little star\nHow I wonder what you are",
                   reply_to=bot.api.sent_message(instrumental))  # fmt: skip
    await bot.wait_for_text(NoSingingFoundError().user_message, since=mark)
    await bot.settle()
    assert bot.api.texts_in_chat(USER_ID, since=mark) == [
        messages.VIDEO_RENDERING,
        NoSingingFoundError().user_message,
    ]
    assert [c for c in bot.api.calls[mark:] if c.method in ("sendVideo", "sendAudio")] == []
    token = ControlState.decode(bot.button_data(instrumental, messages.CONTROL_VIDEO)).token
    kept = await bot.app.store.lyrics.get((await bot.app.store.jobs.get_by_control_token(token)).id)
    assert kept is not None and kept.source == "user" and kept.text is not None
    assert kept.text.splitlines() == ["Twinkle twinkle little star", "How I wonder what you are"]


@pytest.mark.parametrize("telegram_bot", [VIDEO_BOT], indirect=True)
async def test_tempo_0_8_on_a_video_answers_with_a_video_1_25_times_as_long(
    telegram_bot, tmp_path, ffmpeg
):
    bot = telegram_bot
    instrumental = await _instrumental(bot)
    lrc = tmp_path / "twinkle.lrc"
    lrc.write_text(LRC)
    mark = await _reply_with_file(bot, instrumental, lrc)
    [first] = await bot.uploads_after(mark, 1, "sendVideo")
    mark = bot.mark()
    await bot.send(text="/tempo 0.8", reply_to=bot.api.sent_message(first))
    [slower] = await bot.uploads_after(mark, 1, "sendVideo")
    _assert_video_message(bot, slower)
    assert slower.params["caption"] == "clip (Karaoke video, 80%)"
    ratio = _seconds(slower, ffmpeg, tmp_path) / _seconds(first, ffmpeg, tmp_path)
    assert ratio == pytest.approx(1.25, abs=0.03)


@pytest.mark.parametrize(
    "telegram_bot", [{"settings": {**SMALL, "video": {**SMALL["video"], "videos_per_hour": 1}}}],
    indirect=True,
)  # fmt: skip
async def test_videos_have_their_own_rate(telegram_bot, tmp_path):
    bot = telegram_bot
    instrumental = await _instrumental(bot)
    lrc = tmp_path / "twinkle.lrc"
    lrc.write_text(LRC)
    mark = await _reply_with_file(bot, instrumental, lrc)
    [video] = await bot.uploads_after(mark, 1, "sendVideo")
    mark = bot.press(video, "Key +1")
    await bot.wait_for_text("That's all the videos I can make for you for now", since=mark)
    await bot.settle()
    assert [c for c in bot.api.calls[mark:] if c.method == "sendVideo"] == []
    assert await bot.songs_used() == 1


async def test_lrclib_words_from_its_fake_make_the_video(tmp_path, model_repo, telegram_songs):
    """LRCLIB on, pointed at the local fake: asked once by the song's artist, title and
    length; its words make the video and are kept (a second press asks nobody)."""
    from bot.chat.telegram.adapter import TelegramAdapter
    from bot.process.app import build_app
    from tests.support.bot_app import make_pool
    from tests.support.fake_bot_api import FakeBotApi
    from tests.support.fake_lrclib import Track, running_fake_lrclib
    from tests.support.telegram_bot import make_settings

    async with running_fake_lrclib() as lrclib:
        lrclib.add(Track(artist="Trad", title="Twinkle", duration=6, synced=LRC))
        api = FakeBotApi()
        await api.start()
        lyrics = {"lrclib": True, "lrclib_url": lrclib.base_url}
        settings = make_settings(tmp_path, api, model_repo, lyrics=lyrics, **SMALL)
        app = await build_app(
            settings,
            backend=make_pool(settings),
            adapter_factories=[lambda s, flow: TelegramAdapter(s.telegram, flow)],
        )
        await app.start()
        bot = TelegramHarness(api=api, app=app, settings=settings, songs=telegram_songs)
        try:
            instrumental = await _instrumental(bot, title="Twinkle", performer="Trad")
            mark = bot.press(instrumental, messages.CONTROL_VIDEO)
            [video] = await bot.uploads_after(mark, 1, "sendVideo")
            _assert_video_message(bot, video)
            said = bot.api.texts_in_chat(USER_ID, since=mark)[-1]
            assert said == "Here is your karaoke video (words from LRCLIB):"
            mark = bot.press(video, "Key +1")
            await bot.uploads_after(mark, 1, "sendVideo")
            assert len(lrclib.paths) == 1 and lrclib.paths[0].startswith("/api/get")
        finally:
            await app.stop(grace_seconds=5)
            await api.stop()


# -- on this branch alone ------------------------------------------------------------------
async def test_a_strangers_press_on_the_video_button_is_refused(telegram_bot):
    bot = telegram_bot
    instrumental = await _instrumental(bot)
    mark = bot.press(instrumental, messages.CONTROL_VIDEO, user_id=STRANGER)
    await bot.wait_for_text(messages.CONTROL_UNKNOWN, since=mark)
    await bot.settle()
    assert messages.ASK_FOR_LYRICS not in bot.api.texts_in_chat(USER_ID, since=mark)
    assert bot.api.calls_to("sendVideo") == []


async def test_the_video_button_and_a_reply_to_its_question_work_after_a_restart(
    telegram_bot, tmp_path
):
    bot = telegram_bot
    instrumental = await _instrumental(bot)
    await bot.app.stop(grace_seconds=5)
    bot.app = await restart_bot(bot.settings)
    mark = bot.press(instrumental, messages.CONTROL_VIDEO)
    await bot.wait_for_text(messages.ASK_FOR_LYRICS, since=mark)
    question = _question(bot, mark)

    # A stranger's reply to the question is refused, and keeps nothing.
    lrc = tmp_path / "twinkle.lrc"
    lrc.write_text(LRC)
    mark = await _reply_with_file(bot, question, lrc, user_id=STRANGER)
    await bot.wait_for_text(messages.CONTROL_UNKNOWN, chat_id=STRANGER, since=mark)
    job = await bot.app.store.jobs.get_by_control_token(
        ControlState.decode(bot.button_data(instrumental, messages.CONTROL_VIDEO)).token
    )
    kept = await bot.app.store.lyrics.get(job.id)
    assert kept is not None and kept.text is None

    mark = await _reply_with_file(bot, question, lrc)  # the owner's: kept, then rendered
    await bot.wait_for_text(messages.VIDEO_RENDERING, since=mark)
    kept = await bot.app.store.lyrics.get(job.id)
    assert kept is not None and kept.source == "user" and "little star" in (kept.text or "")


async def test_a_lyrics_file_over_the_limit_is_refused_in_one_sentence(telegram_bot, tmp_path):
    bot = telegram_bot
    instrumental = await _instrumental(bot)
    big = tmp_path / "huge.lrc"
    big.write_text("[00:01.00]la la la\n" * (MAX_LYRICS_DOWNLOAD_BYTES // 10))
    refusal = messages.lyrics_file_too_large(MAX_LYRICS_DOWNLOAD_BYTES)
    mark = await _reply_with_file(bot, instrumental, big)  # its declared size says so
    await bot.wait_for_text(refusal, since=mark)
    downloads = bot.api.file_downloads
    mark = await _reply_with_file(bot, instrumental, big, declared_size=1000)  # a lying one
    await bot.wait_for_text(refusal, since=mark)
    await bot.settle()
    assert bot.api.file_downloads == downloads + 1  # read until over the limit, then dropped
    assert bot.api.texts_in_chat(USER_ID, since=mark) == [refusal]


async def test_video_without_a_reply_is_for_the_latest_song_and_plain_text_is_still_chatter(
    telegram_bot,
):
    bot = telegram_bot
    await bot.send(text="/video")
    await bot.wait_for_text(messages.VIDEO_NEEDS_A_SONG)
    await _instrumental(bot)
    await bot.send(text="/video")
    await bot.wait_for_text(messages.ASK_FOR_LYRICS)
    await bot.send(text="Twinkle twinkle little star")  # not a reply: not lyrics
    await bot.wait_for_text(messages.SEND_A_SONG)
