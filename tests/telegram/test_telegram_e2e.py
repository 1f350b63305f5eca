"""End to end through python-telegram-bot: what a user sees, and what the store records."""

from __future__ import annotations

import pytest

from tests.support.fake_bot_api import InjectedError
from tests.support.media import decode_bytes
from tests.support.telegram_bot import ADMIN_ID, USER_ID


async def _user_jobs(bot, user_id: int = USER_ID):
    store = bot.app.store
    user = await store.users.get("telegram", str(user_id))
    status = await store.quotas.status(user, bot.app.flow._config.quota_limits("telegram"))
    return user, status


async def test_polling_is_the_default(telegram_bot):
    await telegram_bot.api.wait_for(lambda api: api.polls > 0, within=10)
    assert telegram_bot.api.calls_to("setWebhook") == []


async def test_start_sets_the_command_menu(telegram_bot):
    calls = telegram_bot.api.calls_to("setMyCommands")
    assert len(calls) == 1
    names = [command["command"] for command in calls[0].params["commands"]]
    assert names == [
        "karaoke", "stems", "quota", "status", "cancel", "key", "tempo", "guide", "video", "help"
    ]  # fmt: skip


async def test_private_audio_gets_instrumental_then_vocals(telegram_bot, tmp_path, ffmpeg):
    await telegram_bot.send_song("clip.mp3", title="My Song", performer="The Band")
    await telegram_bot.wait_for_done()
    texts = telegram_bot.api.texts_in_chat(USER_ID)
    assert texts[0] == "Downloading your song..."
    assert any(text.startswith(("Queued (position", "Separating...")) for text in texts)
    assert texts[-1] == "Done! Instrumental first, then the vocals."
    uploads = telegram_bot.audio_uploads()
    assert [call.files["audio"][0] for call in uploads] == [
        "My Song (Instrumental).mp3",
        "My Song (Vocals).mp3",
    ]
    assert [call.params["title"] for call in uploads] == [
        "My Song (Instrumental)",
        "My Song (Vocals)",
    ]
    assert uploads[0].params["performer"] == "The Band"
    source = telegram_bot.songs["clip.mp3"].read_bytes()
    expected = decode_bytes(source, "source.mp3", ffmpeg, tmp_path).duration_seconds
    for index, call in enumerate(uploads):
        duration = decode_bytes(
            call.files["audio"][1], f"out{index}.mp3", ffmpeg, tmp_path
        ).duration_seconds
        assert abs(duration - expected) < 0.05
    _, status = await _user_jobs(telegram_bot)
    assert status.songs_used == 1
    assert not list((telegram_bot.settings.general.data_dir / "uploads").iterdir())


@pytest.mark.parametrize(
    "name, kind, extra",
    [
        ("voice.oga", "voice", {"mime_type": "audio/ogg"}),
        ("clip.mp4", "video", {"mime_type": "video/mp4"}),
        ("clip.mp3", "document", {"mime_type": "audio/mpeg"}),
    ],
)
async def test_voice_video_and_audio_documents_start_jobs(telegram_bot, name, kind, extra):
    await telegram_bot.send_song(name, kind=kind, **extra)
    await telegram_bot.wait_for_done()
    assert len(telegram_bot.audio_uploads()) == 2


async def test_other_documents_get_one_friendly_answer(telegram_bot):
    await telegram_bot.send_song("paper.pdf", kind="document", mime_type="application/pdf")
    await telegram_bot.wait_for_text("doesn't look like a song")
    assert telegram_bot.api.calls_to("getFile") == []


async def test_too_big_is_refused_before_downloading(telegram_bot):
    await telegram_bot.send_song("clip.mp3", declared_size=30_000_000)
    await telegram_bot.wait_for_text("too big")
    assert telegram_bot.api.calls_to("getFile") == []
    assert "(30 MB); the limit is 20 MB." in telegram_bot.api.texts_in_chat(USER_ID)[-1]


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("notes.mp3", "doesn't look like audio"),
        ("cut.mp3", "damaged or cut off"),
    ],
)
async def test_bad_files_are_explained_and_cost_nothing(telegram_bot, name, fragment):
    await telegram_bot.send_song(name)
    await telegram_bot.wait_for_text(fragment)
    _, status = await _user_jobs(telegram_bot)
    assert status.songs_used == 0
    assert telegram_bot.audio_uploads() == []
    assert not list((telegram_bot.settings.general.data_dir / "uploads").iterdir())


@pytest.mark.parametrize(
    "telegram_bot", [{"settings": {"audio": {"max_duration_seconds": 10}}}], indirect=True
)
async def test_too_long_is_refused(telegram_bot):
    await telegram_bot.send_song("long.mp3")
    await telegram_bot.wait_for_text("That song is 0:20 long; the limit is 0:10")
    _, status = await _user_jobs(telegram_bot)
    assert status.songs_used == 0


@pytest.mark.parametrize(
    "telegram_bot", [{"settings": {"quota": {"telegram": {"songs_per_day": 1}}}}], indirect=True
)
async def test_quota_exhausted_says_when_it_frees_up(telegram_bot):
    await telegram_bot.send_song("clip.mp3")
    await telegram_bot.wait_for_done()
    await telegram_bot.send_song("clip.mp3")
    await telegram_bot.wait_for_text("You've used today's songs")
    assert "frees up in 2" in telegram_bot.api.texts_in_chat(USER_ID)[-1]  # 23 h 59 or 24 h
    await telegram_bot.send(text="/quota")
    await telegram_bot.wait_for_text("You have 0 songs")


@pytest.mark.parametrize("telegram_bot", [{"pool": {"max_queued_jobs": 0}}], indirect=True)
async def test_busy_pool_refunds_and_explains(telegram_bot):
    await telegram_bot.send_song("clip.mp3")
    await telegram_bot.wait_for_text("very busy")
    _user, status = await _user_jobs(telegram_bot)
    assert status.songs_used == 0
    jobs = await telegram_bot.app.store.stats.collect()
    assert jobs.jobs_by_status.get("failed") == 1


async def test_cancel_mid_job(telegram_bot):
    await telegram_bot.send_song("long.mp3")
    await telegram_bot.wait_for_text("Separating...")
    await telegram_bot.send(text="/cancel")
    await telegram_bot.wait_for_text("Cancelled.")
    _, status = await _user_jobs(telegram_bot)
    assert status.songs_used == 0
    assert telegram_bot.audio_uploads() == []
    stats = await telegram_bot.app.store.stats.collect()
    assert stats.jobs_by_status.get("cancelled") == 1
    data_dir = telegram_bot.settings.general.data_dir
    await telegram_bot.api.wait_for(lambda _: not any((data_dir / "tmp").iterdir()), within=10)
    assert list((data_dir / "uploads").iterdir()) == []  # nothing of the song is left


async def test_retry_after_from_telegram_is_waited_out(telegram_bot):
    telegram_bot.api.fail_next(
        "sendAudio", InjectedError(429, "Too Many Requests: retry after 1", retry_after=1)
    )
    await telegram_bot.send_song("clip.mp3")
    await telegram_bot.wait_for_done()
    uploads = telegram_bot.audio_uploads()
    assert len(uploads) == 3  # the refused attempt, then both files
    assert uploads[1].at - uploads[0].at >= 0.9


async def test_second_song_is_queued_while_the_first_runs(telegram_bot):
    await telegram_bot.send_song("long.mp3")
    await telegram_bot.send_song("clip.mp3")
    await telegram_bot.api.wait_for(
        lambda api: len(api.calls_to("sendAudio")) == 4,
        within=90,
    )
    assert len(telegram_bot.audio_uploads()) == 4


async def test_groups_ignore_songs_without_a_mention(telegram_bot):
    group = -1001
    await telegram_bot.send_song("clip.mp3", chat_id=group, chat_type="supergroup")
    await telegram_bot.send(chat_id=group, text="hello everyone", chat_type="supergroup")
    await telegram_bot.settle()
    assert telegram_bot.api.texts_in_chat(group) == []


async def test_groups_answer_a_song_that_mentions_the_bot(telegram_bot):
    group = -1003
    await telegram_bot.send_song(
        "clip.mp3", chat_id=group, chat_type="group", caption="@karaoke_test_bot please"
    )
    await telegram_bot.wait_for_done(chat_id=group)
    assert len(telegram_bot.audio_uploads(group)) == 2


async def test_groups_never_get_errors_for_unsolicited_files(telegram_bot):
    group = -1004
    await telegram_bot.send_song("notes.mp3", chat_id=group, chat_type="group")
    await telegram_bot.send(chat_id=group, text="/karaoke", chat_type="group")
    await telegram_bot.settle()
    assert telegram_bot.api.texts_in_chat(group) == []


async def test_groups_answer_karaoke_in_reply_to_a_song(telegram_bot):
    group = -1002
    media = telegram_bot.api.audio_attachment(telegram_bot.songs["clip.mp3"])
    song = telegram_bot.api.message(chat_id=group, user_id=USER_ID, chat_type="supergroup", **media)
    await telegram_bot.send(chat_id=group, text="/karaoke", chat_type="supergroup", reply_to=song)
    await telegram_bot.wait_for_done(chat_id=group)
    assert len(telegram_bot.audio_uploads(group)) == 2


async def test_karaoke_then_song_in_private(telegram_bot):
    await telegram_bot.send(text="/stems")
    await telegram_bot.wait_for_text("Send me the song now")
    await telegram_bot.send_song("clip.mp3", title="Four")
    await telegram_bot.wait_for_done()
    names = [call.files["audio"][0] for call in telegram_bot.audio_uploads()]
    assert names == ["Four (Drums).mp3", "Four (Bass).mp3", "Four (Other).mp3", "Four (Vocals).mp3"]


@pytest.mark.parametrize(
    "command, fragment",
    [
        ("/start", "karaoke track"),
        ("/help", "Privacy"),
        ("/quota", "songs"),
        ("/status", "Songs waiting in the queue: 0"),
        ("/cancel", "no song in progress"),
        ("/stats", "admins"),
        ("hello", "Send me a song"),
    ],
)
async def test_commands(telegram_bot, command, fragment):
    await telegram_bot.send(text=command)
    await telegram_bot.wait_for_text(fragment)


async def test_admin_commands(telegram_bot):
    await telegram_bot.send(text="/quota")  # the bot now knows this user
    await telegram_bot.wait_for_text("songs")
    await telegram_bot.send(text=f"/ban telegram:{USER_ID}", chat_id=ADMIN_ID, user_id=ADMIN_ID)
    await telegram_bot.wait_for_text("is banned", chat_id=ADMIN_ID)
    await telegram_bot.send_song("clip.mp3")
    await telegram_bot.wait_for_text("can't use this bot")
    await telegram_bot.send(text="/grant telegram:nobody x", chat_id=ADMIN_ID, user_id=ADMIN_ID)
    await telegram_bot.wait_for_text("Usage", chat_id=ADMIN_ID)
    await telegram_bot.send(text="/stats", chat_id=ADMIN_ID, user_id=ADMIN_ID)
    await telegram_bot.wait_for_text("jobs", chat_id=ADMIN_ID)


async def test_edited_messages_start_nothing_and_cost_nothing(telegram_bot):
    """Issue 20: editing the caption of an old song started a whole new job (and, past
    the cache's day, charged it). Edits are ignored; /help says to send the song again."""
    bot = telegram_bot
    song = await bot.send_song("clip.mp3")
    await bot.wait_for_done()
    command = await bot.send(text="/karaoke", reply_to=song)
    await bot.wait_for_done(since=bot.last_action)
    used = await bot.songs_used()
    mark = bot.mark()
    for message in (song, command):
        bot.api.push_update(
            {"edited_message": {**message, "caption": "now with a caption", "edit_date": 1}}
        )
    await bot.settle()
    assert bot.api.calls[mark:] == []
    assert await bot.songs_used() == used

    await bot.send(text="/help")
    await bot.wait_for_text("Editing a message I already answered changes nothing")
