"""Karaoke controls on Telegram: buttons under the instrumental re-render it from the kept
stems (the model never runs again), a stranger's press is refused, buttons survive a
restart, and ``/key`` in reply to a result works too."""

from __future__ import annotations

import logging

import pytest

from bot.chat.conversation import messages
from separation.cpu_budget import CpuPlan
from separation.pool import SeparationPool
from tests.support.media import generate
from tests.support.pool import CountingRunner, SlotLog
from tests.support.telegram_bot import USER_ID, TelegramHarness, restart_bot

RUNNER = CountingRunner()
STRANGER = 5151
MINUS = "\N{MINUS SIGN}"


def _labels(call) -> list[list[str]]:
    return [
        [button["text"] for button in row] for row in call.params["reply_markup"]["inline_keyboard"]
    ]


def _data(call, label: str) -> str:
    return TelegramHarness.button_data(call, label)


async def _press(bot: TelegramHarness, call, label: str, *, user_id: int = USER_ID) -> int:
    """Press ``label`` under the message ``call`` sent; returns the mark before it."""
    return bot.press(call, label, user_id=user_id)


async def _uploads_after(bot: TelegramHarness, mark: int, count: int) -> list:
    return await bot.uploads_after(mark, count)


@pytest.mark.parametrize("telegram_bot", [{"pool": {"runner": RUNNER}}], indirect=True)
async def test_three_presses_three_renders_and_the_model_ran_once(telegram_bot):
    bot = telegram_bot
    await bot.send_song("clip.mp3")
    await bot.wait_for_done()
    instrumental, vocals = bot.audio_uploads()
    assert _labels(instrumental) == [
        [f"Key {MINUS}1", "Key +1"],
        ["Slower", "Faster"],
        ["Guide vocal on"],
        [messages.CONTROL_VIDEO],
    ]
    assert "reply_markup" not in vocals.params
    forward_passes = len(RUNNER.batches)

    current = instrumental
    expected = [
        ("Key \N{MINUS SIGN}1", f"clip (Instrumental, {MINUS}1 key)"),
        ("Slower", f"clip (Instrumental, {MINUS}1 key, 95%)"),
        ("Guide vocal on", f"clip (Instrumental, {MINUS}1 key, 95%, guide vocal {MINUS}12 dB)"),
    ]
    for label, title in expected:
        mark = await _press(bot, current, label)
        new_instrumental, new_vocals = await _uploads_after(bot, mark, 2)
        assert bot.api.calls_to("answerCallbackQuery")[-1] in bot.api.calls[mark:]
        # "Changing it..." at once, edited into what changed before the files come.
        shown = [c for c in bot.api.calls[mark:] if c.method in ("sendMessage", "editMessageText")]
        assert [(c.method, c.params["text"]) for c in shown] == [
            ("sendMessage", messages.CONTROL_RENDERING),
            ("editMessageText", "Here it is, " + title.split(", ", 1)[1].rstrip(")") + ":"),
        ]
        assert bot.api.calls.index(shown[-1]) < bot.api.calls.index(new_instrumental)
        assert new_instrumental.params["title"] == title
        # The guide vocal is mixed into the instrumental only: never in the vocals' title.
        vocals_title = title.replace("Instrumental", "Vocals").replace(
            f", guide vocal {MINUS}12 dB", ""
        )
        assert new_vocals.params["title"] == vocals_title
        assert "reply_markup" in new_instrumental.params
        current = new_instrumental
    assert _labels(current)[-2:] == [["Guide vocal off"], [messages.CONTROL_VIDEO]]
    assert len(RUNNER.batches) == forward_passes  # three renders, no forward pass
    assert await bot.songs_used() == 1  # renders cost no song

    mark = await _press(bot, current, "Key +1", user_id=STRANGER)
    await bot.wait_for_text(messages.CONTROL_UNKNOWN, chat_id=USER_ID, since=mark)
    await bot.settle()
    assert [c for c in bot.api.calls[mark:] if c.method == "sendAudio"] == []


async def test_key_in_reply_to_a_result_and_buttons_after_a_restart(telegram_bot):
    bot = telegram_bot
    await bot.send_song("clip.mp3")
    await bot.wait_for_done()
    instrumental, _ = bot.audio_uploads()

    mark = bot.mark()
    await bot.send(text="/key -2", reply_to=bot.api.sent_message(instrumental))
    renders = await _uploads_after(bot, mark, 2)
    assert renders[0].params["title"] == f"clip (Instrumental, {MINUS}2 keys)"

    # Its state is read from all its buttons: not the first one's (which asks for -3).
    mark = bot.mark()
    await bot.send(text="/tempo 0.9", reply_to=bot.api.sent_message(renders[0]))
    slower = await _uploads_after(bot, mark, 2)
    assert slower[0].params["title"] == f"clip (Instrumental, {MINUS}2 keys, 90%)"

    mark = bot.mark()
    await bot.send(text="/key 9", reply_to=bot.api.sent_message(instrumental))
    await bot.wait_for_text("The key can't be 9", since=mark)
    await bot.send(text="/tempo 0.9")  # not a reply: says how
    await bot.wait_for_text("Reply to one of my instrumentals")

    await bot.app.stop(grace_seconds=5)
    bot.app = await restart_bot(bot.settings)
    mark = await _press(bot, instrumental, "Faster")
    [faster, _] = await _uploads_after(bot, mark, 2)
    assert faster.params["title"] == "clip (Instrumental, 105%)"


@pytest.mark.parametrize(
    "telegram_bot",
    [{"settings": {"rate_limit": {"renders_per_minute": 0.5, "render_burst": 1}}}],
    indirect=True,
)
async def test_renders_have_their_own_rate_limit(telegram_bot):
    """A second press within the render limit is refused with one notice; the song
    quota and the general rate limit are untouched."""
    bot = telegram_bot
    await bot.send_song("clip.mp3")
    await bot.wait_for_done()
    instrumental, _ = bot.audio_uploads()
    mark = await _press(bot, instrumental, "Faster")
    await _uploads_after(bot, mark, 2)
    mark = await _press(bot, instrumental, "Slower")
    await bot.wait_for_text("Slow down a little", since=mark)
    await bot.settle()
    assert [c for c in bot.api.calls[mark:] if c.method == "sendAudio"] == []
    assert await bot.songs_used() == 1


async def test_forged_buttons_are_answered_alike_and_never_reach_the_database(telegram_bot, caplog):
    """Issue 20: a job id of 2**63 got no answer and an ERROR; a stranger's song and no
    song were told apart; data not ours left the client's spinner turning."""
    bot = telegram_bot
    await bot.send_song("clip.mp3")
    await bot.wait_for_done()
    instrumental, _ = bot.audio_uploads()
    own = _data(instrumental, "Faster")
    token = own.split(":")[1]
    assert len(token) == 12 and f":{token}:" in _data(instrumental, "Slower")

    cases = [
        ("kc:9223372036854775808:0:100:-", messages.CONTROL_BROKEN),  # id >= 2**63
        ("kc:1:0:105:-", messages.CONTROL_BROKEN),  # an old button's sequential id
        (own.replace(token, "A" * 12), messages.CONTROL_UNKNOWN),  # no such song
    ]
    for data, answer in cases:
        mark = bot.mark()
        bot.api.push_update(
            bot.api.press(bot.api.sent_message(instrumental), user_id=USER_ID, data=data)
        )
        await bot.wait_for_text(answer, since=mark)
    mark = bot.mark()
    await _press(bot, instrumental, "Faster", user_id=STRANGER)  # someone else's song
    await bot.wait_for_text(messages.CONTROL_UNKNOWN, since=mark)

    mark = bot.mark()
    bot.api.push_update(
        bot.api.press(bot.api.sent_message(instrumental), user_id=USER_ID, data="zz:1")
    )
    await bot.settle()
    assert [c.method for c in bot.api.calls[mark:]] == ["answerCallbackQuery"]  # and nothing said
    assert len(bot.api.calls_to("answerCallbackQuery")) == len(cases) + 2
    assert not bot.api.open_queries
    assert [c for c in bot.audio_uploads() if c not in (instrumental, _)] == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_huge_argument_is_quoted_as_a_short_excerpt(telegram_bot, caplog):
    """Issue 20: ``/key`` with 4,090 digits was echoed whole; Telegram refused the reply
    as too long, the user saw nothing and the log showed an ERROR."""
    bot = telegram_bot
    await bot.send_song("clip.mp3")
    await bot.wait_for_done()
    instrumental, _ = bot.audio_uploads()
    mark = bot.mark()
    await bot.send(text="/key " + "9" * 4090, reply_to=bot.api.sent_message(instrumental))
    await bot.wait_for_text("The key can't be 999", since=mark)
    await bot.settle()
    [refusal] = bot.api.texts_in_chat(USER_ID, since=mark)
    assert len(refusal) < 120 and "\N{HORIZONTAL ELLIPSIS}" in refusal
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    "telegram_bot",
    [{"settings": {"rate_limit": {"requests_per_minute": 0.5, "burst": 1}}}],
    indirect=True,
)
async def test_every_callback_query_is_answered_even_over_the_rate(telegram_bot):
    """Issue 20: data without our prefix was never answered, and neither was a press the
    rate gate stopped: the client's spinner kept turning."""
    bot = telegram_bot
    message = bot.api.message(chat_id=USER_ID, user_id=USER_ID, text="an old message")
    for data in ("zz:1", "zz:2", "kc:1:0:100:-"):
        bot.api.push_update(bot.api.press(message, user_id=USER_ID, data=data))
    await bot.settle()
    assert len(bot.api.calls_to("answerCallbackQuery")) == 3
    assert not bot.api.open_queries


LISTENER = 6100
STORMERS = (6201, 6202, 6203)
STORM_LABELS = (f"Key {MINUS}1", "Key +1", "Slower", "Faster", "Guide vocal on")


def _seconds_to_done(bot: TelegramHarness, chat_id: int, since: int) -> float:
    """From the song's first message ("Downloading...") to its "Done!", as the fake API
    received them: the time the user waited."""
    calls = [c for c in bot.api.calls[since:] if str(c.params.get("chat_id")) == str(chat_id)]
    first = next(c for c in calls if c.method == "sendMessage")
    done = next(c for c in calls if "Done!" in c.params.get("text", ""))
    return done.at - first.at


STORM_BOT = {
    "pool": {"cpu": CpuPlan.for_cores(2, 2), "batch_size": 1},
    # A song and five presses at once are within any user's rate: storms, not floods.
    "settings": {"rate_limit": {"burst": 10}},
}


@pytest.mark.parametrize("telegram_bot", [STORM_BOT], indirect=True)
@pytest.mark.parametrize("stormers", [1, 3])
async def test_render_storms_do_not_hold_up_another_users_song(
    telegram_bot, stormers, tmp_path, ffmpeg
):
    """Issue 20: users press all five buttons under a long song while another user sends
    a short one. The short song's decode, model step and encoders go before every render
    (a render under way pauses), its "Done!" comes before the storm is over, and it takes
    no more than 1.5x its time alone."""
    bot = telegram_bot
    songs = {
        name: generate(tmp_path / f"{name}.flac", ffmpeg, f"sine=frequency={hz}:duration={s}",
                       "-ac", "2")
        for name, hz, s in [("alone", 330, 20), ("stormed", 350, 20), ("long-0", 220, 30),
                            ("long-1", 230, 30), ("long-2", 240, 30)]
    }  # fmt: skip
    bot.songs = {**bot.songs, **songs}
    stormers_ids = STORMERS[:stormers]
    instrumentals = {}
    for index, user in enumerate(stormers_ids):
        mark = bot.mark()
        await bot.send_song(f"long-{index}", chat_id=user, user_id=user)
        await bot.wait_for_done(chat_id=user, user_id=user, since=mark)
        instrumentals[user] = bot.audio_uploads(chat_id=user)[0]

    mark = bot.mark()
    await bot.send_song("alone", chat_id=LISTENER, user_id=LISTENER)
    await bot.wait_for_done(chat_id=LISTENER, user_id=LISTENER, since=mark)
    alone = _seconds_to_done(bot, LISTENER, mark)

    pool = bot.app.backend
    assert isinstance(pool, SeparationPool)
    log = SlotLog(pool.cpu)
    storm = bot.mark()
    for user in stormers_ids:
        for label in STORM_LABELS:
            await _press(bot, instrumentals[user], label, user_id=user)
    await log.wait_for("grant AFTER_THE_FACT")  # a render holds the only ffmpeg slot
    mark = bot.mark()
    since = len(log.events)
    await bot.send_song("stormed", chat_id=LISTENER, user_id=LISTENER)
    await bot.wait_for_done(chat_id=LISTENER, user_id=LISTENER, since=mark)
    stormed = _seconds_to_done(bot, LISTENER, mark)
    done_at = len(bot.api.calls)
    await bot.settle()

    assert log.songs_served_first()  # no render got a slot while the song waited for one
    assert "pause AFTER_THE_FACT" in log.events  # a render under way stepped aside
    renders = [c for c in bot.api.calls[storm:] if c.method == "sendAudio"
               and int(c.params["chat_id"]) in stormers_ids]  # fmt: skip
    assert renders and bot.api.calls.index(renders[-1]) > done_at  # the storm outlasted it
    for user in stormers_ids:  # every presser saw "Changing it..." first
        assert bot.api.texts_in_chat(user, since=storm)[0] == messages.CONTROL_RENDERING
    if stormers == 3:  # 15 presses, at most 10 renders queued or running
        busy = [text for user in stormers_ids for text in bot.api.texts_in_chat(user, since=storm)
                if text.startswith("I'm busy with other songs right now")]  # fmt: skip
        assert busy and len(renders) // 2 + len(busy) == 15
    # Renders held the song's decode and encoders up for a small part of its time alone
    # (the budget's own record, which load from outside the bot cannot inflate) ...
    held = log.songs_waited_seconds(since)
    assert held <= 0.25 * alone, (held, alone)
    # ... and the user waited at most 1.5x as long as for the song alone.
    assert stormed <= 1.5 * alone, (stormed, alone)
