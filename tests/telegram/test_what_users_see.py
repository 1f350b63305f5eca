"""Issue 11, through python-telegram-bot and the fake Bot API: the texts in order, as the
user reads them, and what the bot asks Telegram for on the way."""

from __future__ import annotations

import re
import time

import pytest

from bot.chat.conversation.user_text import MAX_NAME_CHARS
from tests.support.media import excerpt
from tests.support.telegram_bot import ADMIN_ID, USER_ID

IN_A_DAY = r"in (23 h 59 min|24 h) \(tomorrow, \d\d:\d\d UTC\)"


def _texts_since(api, index: int) -> list[str]:
    return [
        call.params.get("text", "")
        for call in api.calls[index:]
        if call.method in ("sendMessage", "editMessageText")
    ]


@pytest.mark.parametrize(
    "telegram_bot", [{"settings": {"quota": {"telegram": {"songs_per_day": 1}}}}], indirect=True
)
async def test_an_over_quota_song_is_refused_at_once_without_downloading(telegram_bot):
    api = telegram_bot.api
    await telegram_bot.send_song("clip.mp3")
    await telegram_bot.wait_for_done()
    downloads = len(api.calls_to("getFile"))
    before = len(api.calls)
    sent_at = time.monotonic()
    song = await telegram_bot.send_song("clip.mp3")
    await telegram_bot.wait_for_text("You've used today's songs")
    assert time.monotonic() - sent_at < 2.5  # no wait on the 3 s edit throttle
    await telegram_bot.settle()
    texts = _texts_since(api, before)
    assert len(texts) == 1
    refused = rf"You've used today's songs\. The next one frees up {IN_A_DAY}\."
    assert re.fullmatch(refused, texts[0])
    refusal = api.calls_to("sendMessage")[-1]
    assert refusal.params["reply_parameters"]["message_id"] == song["message_id"]
    assert len(api.calls_to("getFile")) == downloads  # the refused song was never fetched

    await telegram_bot.send(text="/quota")
    await telegram_bot.wait_for_text("You have 0 songs", within=10)
    assert re.fullmatch(
        r"You have 0 songs and 60 minutes of audio left today\. "
        rf"Your oldest song stops counting {IN_A_DAY}\. Songs can be up to 15 minutes long\.",
        api.texts_in_chat(USER_ID)[-1],
    )
    await telegram_bot.send(text="/status")
    await telegram_bot.wait_for_text("Songs waiting in the queue")
    assert api.texts_in_chat(USER_ID)[-1].splitlines() == [
        "Songs waiting in the queue: 0.",
        "You have no song in progress.",
        api.texts_in_chat(USER_ID)[-2],  # the /quota answer
    ]


async def test_a_banned_users_song_is_refused_at_once_without_downloading(telegram_bot):
    api = telegram_bot.api
    await telegram_bot.send(text="/quota")  # the bot now knows this user
    await telegram_bot.wait_for_text("songs")
    await telegram_bot.send(text=f"/ban telegram:{USER_ID}", chat_id=ADMIN_ID, user_id=ADMIN_ID)
    await telegram_bot.wait_for_text("is banned", chat_id=ADMIN_ID)
    before = len(api.texts_in_chat(USER_ID))
    await telegram_bot.send_song("clip.mp3")
    await telegram_bot.wait_for_text("can't use this bot")
    await telegram_bot.settle()
    assert api.texts_in_chat(USER_ID)[before:] == ["Sorry, you can't use this bot."]
    assert api.calls_to("getFile") == []


@pytest.mark.parametrize(
    "telegram_bot",
    [{"settings": {"quota": {"telegram": {"max_concurrent_jobs": 1}}}}],
    indirect=True,
)
async def test_a_second_song_while_one_runs_is_refused_before_downloading(telegram_bot):
    api = telegram_bot.api
    await telegram_bot.send_song("long.mp3")
    await api.wait_for(lambda a: len(a.calls_to("getFile")) == 1, within=30)
    await telegram_bot.wait_for_text("Separating...")
    before = len(api.calls)
    await telegram_bot.send_song("clip.mp3")
    await telegram_bot.wait_for_text("You already have 1 song in progress")
    assert _texts_since(api, before)[:1] == [
        "You already have 1 song in progress (the limit is 1); wait for it to finish."
    ]
    assert len(api.calls_to("getFile")) == 1
    await telegram_bot.wait_for_done()


@pytest.mark.parametrize("telegram_bot", [{"progress_interval": 3.0}], indirect=True)
async def test_done_is_shown_no_later_than_the_files_arrive(telegram_bot):
    api = telegram_bot.api
    await telegram_bot.send_song("clip.mp3", title="My Song")
    await api.wait_for(lambda a: len(a.calls_to("sendAudio")) == 2, within=60)
    await telegram_bot.wait_for_text("Done!", within=10)
    done = next(
        index
        for index, call in enumerate(api.calls)
        if call.method == "editMessageText" and call.params["text"].startswith("Done!")
    )
    first_file = api.calls.index(api.calls_to("sendAudio")[0])
    assert done < first_file
    assert api.calls[done].at <= api.calls[first_file].at
    assert api.texts_in_chat(USER_ID)[-1] == "Done! Instrumental first, then the vocals."


@pytest.mark.parametrize(
    "telegram_bot",
    [{"settings": {"rate_limit": {"requests_per_minute": 1, "burst": 1}}}],
    indirect=True,
)
async def test_a_rate_limited_song_is_answered_in_reply_to_that_song(telegram_bot):
    api = telegram_bot.api
    await telegram_bot.send(text="/quota")
    await telegram_bot.wait_for_text("You have")
    dropped = await telegram_bot.send_song("clip.mp3")
    await telegram_bot.wait_for_text("Slow down")
    notice = api.calls_to("sendMessage")[-1]
    assert re.fullmatch(r"Slow down a little: try again in \d+ s\.", notice.params["text"])
    assert notice.params["reply_parameters"]["message_id"] == dropped["message_id"]
    assert api.calls_to("getFile") == []


@pytest.fixture
def tagged_voice(telegram_bot, tmp_path, clip_path, ffmpeg):
    """A voice note whose file carries an artist tag but no title."""
    path = excerpt(
        clip_path, tmp_path / "voice.oga", ffmpeg, 5,
        "-ac", "1", "-c:a", "libopus", "-b:a", "32k", "-metadata", "artist=The Band",
        "-f", "ogg",
    )  # fmt: skip
    telegram_bot.songs = {**telegram_bot.songs, "tagged-voice.oga": path}
    return "tagged-voice.oga"


async def test_a_voice_note_is_titled_and_credited_consistently(telegram_bot, tagged_voice):
    await telegram_bot.send_song(tagged_voice, kind="voice", mime_type="audio/ogg")
    await telegram_bot.wait_for_done()
    uploads = telegram_bot.audio_uploads()
    assert [call.params["title"] for call in uploads] == [
        "Voice message (Instrumental)",
        "Voice message (Vocals)",
    ]
    assert [call.params.get("performer") for call in uploads] == [None, None]


async def test_names_with_invisible_characters_go_out_clean(telegram_bot):
    """Issue 20: a right-to-left override and zero-width characters reached file names
    and titles ('\u202e3pm (Instrumental).mp3'), and a performer of a newline plus 5,002
    characters went out as it was."""
    await telegram_bot.send_song(
        "clip.mp3",
        title="\u202e3pm\u200b",
        performer="Ann\n" + "x" * 5002,
        file_name="\u202e3pm.mp3",
    )
    await telegram_bot.wait_for_done()
    uploads = telegram_bot.audio_uploads()
    assert [call.params["title"] for call in uploads] == ["3pm (Instrumental)", "3pm (Vocals)"]
    assert [call.files["audio"][0] for call in uploads] == [
        "3pm (Instrumental).mp3",
        "3pm (Vocals).mp3",
    ]
    for call in uploads:
        assert call.params["performer"] == "Ann " + "x" * (MAX_NAME_CHARS - 4)
