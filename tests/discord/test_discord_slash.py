"""``/karaoke`` and the other slash commands, end to end: what users see, what is stored."""

from __future__ import annotations

import itertools

import pytest

from bot.chat.conversation.messages import DONE
from bot.chat.discord.replies import MOVED_NOTICE
from tests.support.discord_bot import ADMIN_ID, ADMIN_ROLE_ID, OTHER_USER_ID, SONG_CHANNEL, USER_ID
from tests.support.media import decode_bytes, decode_file

EPHEMERAL = 64


async def _job_count(bot, status: str) -> int:
    return (await bot.app.store.stats.collect()).jobs_by_status.get(status, 0)


async def test_karaoke_defers_shows_progress_and_follows_up_with_two_files(
    discord_bot, tmp_path, ffmpeg
):
    token = discord_bot.karaoke("clip.mp3")
    await discord_bot.wait_for_done()
    api = discord_bot.api
    kinds = [call.kind for call in api.calls if call.interaction_token == token]
    assert kinds[0] == "respond"  # deferred before anything else (Discord allows 3 s)
    assert api.calls_to("respond")[0].payload["type"] == 5  # "thinking..."
    assert kinds.index("respond") < kinds.index("edit_original") < kinds.index("followup")
    texts = api.interaction_texts(token)
    assert texts[0] == "Downloading your song..."
    edits = [call.at for call in api.calls_to("edit_original")][:-1]  # "Done!" is not held
    assert min(b - a for a, b in itertools.pairwise(edits)) >= 0.1  # throttled (0.2 s here)
    assert any(text.startswith(("Queued", "Separating...")) for text in texts)
    assert texts[-1] == DONE
    last_edit = max(index for index, kind in enumerate(kinds) if kind == "edit_original")
    assert last_edit < kinds.index("followup")  # "Done!" no later than the files
    [followup] = api.calls_to("followup")
    assert followup.file_names == ["clip (Instrumental).mp3", "clip (Vocals).mp3"]
    source = decode_file(discord_bot.songs["clip.mp3"], ffmpeg, tmp_path).duration_seconds
    for index, (_, content) in enumerate(followup.files):
        output = decode_bytes(content, f"out{index}.mp3", ffmpeg, tmp_path)
        assert abs(output.duration_seconds - source) < 0.05
    assert await discord_bot.songs_used() == 1
    assert not list((discord_bot.settings.general.data_dir / "uploads").iterdir())


async def test_four_stems_in_another_format(discord_bot):
    discord_bot.karaoke("clip.mp3", stems="four", output_format="opus")
    await discord_bot.wait_for_done()
    names = [name for call in discord_bot.api.calls_to("followup") for name in call.file_names]
    stems = [name.rsplit(".", 1)[0] for name in names]
    assert stems == ["clip (Drums)", "clip (Bass)", "clip (Other)", "clip (Vocals)"]
    assert all(not name.endswith(".mp3") for name in names)


async def test_not_audio_is_refused_at_once_without_downloading(discord_bot):
    pdf = discord_bot.song_attachment("paper.pdf", content_type="application/pdf")
    token = discord_bot.karaoke(attachment=pdf)
    await discord_bot.wait_for_text("doesn't look like a song")
    [answer] = [c for c in discord_bot.api.calls if c.interaction_token == token]
    assert answer.payload["type"] == 4 and answer.payload["data"]["flags"] == EPHEMERAL
    assert discord_bot.api.calls_to("download") == []


async def test_too_big_is_refused_from_its_declared_size(discord_bot):
    token = discord_bot.karaoke(declared_size=300 * 2**20)
    await discord_bot.wait_for_text("too big")
    assert "200 MB" in discord_bot.api.interaction_texts(token)[-1]
    assert discord_bot.api.calls_to("download") == []
    assert await discord_bot.songs_used() == 0


@pytest.mark.parametrize(
    "discord_bot", [{"settings": {"audio": {"max_input_bytes": 50_000}}}], indirect=True
)
async def test_a_lying_declared_size_is_cut_off_while_downloading(discord_bot):
    small = discord_bot.song_attachment("clip.mp3", declared_size=1_000)
    assert discord_bot.songs["clip.mp3"].stat().st_size > 50_000
    discord_bot.karaoke(attachment=small)
    await discord_bot.wait_for_text("too big")
    assert len(discord_bot.api.calls_to("download")) == 1
    assert await discord_bot.songs_used() == 0
    assert not list((discord_bot.settings.general.data_dir / "uploads").iterdir())


@pytest.mark.parametrize(
    "name, fragment", [("notes.mp3", "doesn't look like audio"), ("cut.mp3", "damaged or cut off")]
)
async def test_bad_files_are_explained_and_cost_nothing(discord_bot, name, fragment):
    discord_bot.karaoke(name)
    await discord_bot.wait_for_text(fragment)
    assert discord_bot.api.calls_to("followup") == []
    assert await discord_bot.songs_used() == 0


@pytest.mark.parametrize(
    "discord_bot", [{"settings": {"quota": {"discord": {"songs_per_day": 0}}}}], indirect=True
)
async def test_quota_exhausted_is_explained_and_nothing_runs(discord_bot):
    token = discord_bot.karaoke()
    await discord_bot.wait_for_text("You've used today's songs")
    assert discord_bot.api.interaction_texts(token)[-1].startswith("You've used today's songs")
    assert await _job_count(discord_bot, "queued") + await _job_count(discord_bot, "done") == 0
    quota = discord_bot.slash("quota")
    await discord_bot.api.wait_for(
        lambda api: any("You have 0 songs" in text for text in api.interaction_texts(quota))
    )


@pytest.mark.parametrize("discord_bot", [{"pool": {"max_queued_jobs": 0}}], indirect=True)
async def test_busy_pool_refunds_and_explains(discord_bot):
    discord_bot.karaoke()
    await discord_bot.wait_for_text("very busy")
    assert await discord_bot.songs_used() == 0
    assert await _job_count(discord_bot, "failed") == 1


async def test_cancel_mid_job(discord_bot):
    song = discord_bot.karaoke("long.mp3")
    await discord_bot.wait_for_text("Separating...")
    cancel = discord_bot.slash("cancel")
    await discord_bot.api.wait_for(lambda api: "Cancelled." in api.interaction_texts(song)[-1])
    await discord_bot.api.wait_for(lambda api: api.interaction_texts(cancel))
    assert discord_bot.api.interaction_texts(cancel) == ["Cancelling your song..."]
    assert discord_bot.api.calls_to("followup") == []
    assert await discord_bot.songs_used() == 0
    assert await _job_count(discord_bot, "cancelled") == 1


async def test_a_413_on_the_followup_is_explained_and_refunded(discord_bot):
    discord_bot.api.fail_next("followup", 413, 40005, "Request entity too large")
    token = discord_bot.karaoke()
    await discord_bot.wait_for_text("upload limit")
    assert "10 MB per file" in discord_bot.api.interaction_texts(token)[-1]
    assert [c.status for c in discord_bot.api.calls_to("followup")] == [413]
    assert await discord_bot.songs_used() == 0
    assert await _job_count(discord_bot, "failed") == 1


async def test_a_429_is_waited_out_by_discord_py(discord_bot):
    discord_bot.api.rate_limit_next("followup", retry_after=0.5)
    discord_bot.karaoke()
    await discord_bot.wait_for_done()
    refused, delivered = discord_bot.api.calls_to("followup")
    assert (refused.status, delivered.status) == (429, 200)
    assert delivered.at - refused.at >= 0.45
    assert len(delivered.files) == 2
    assert await discord_bot.songs_used() == 1


async def test_files_that_do_not_fit_together_go_in_separate_messages(discord_bot):
    limit = 300_000
    discord_bot.karaoke(size_limit=limit)
    await discord_bot.wait_for_done()
    followups = discord_bot.api.calls_to("followup")
    assert [call.file_names for call in followups] == [
        ["clip (Instrumental).mp3"],
        ["clip (Vocals).mp3"],
    ]
    sizes = [len(content) for call in followups for _, content in call.files]
    assert max(sizes) <= limit < sum(sizes)


@pytest.mark.parametrize(
    "limit, output_format", [(50_000, None), (300_000, "flac")], ids=["mp3", "flac"]
)
async def test_a_file_that_cannot_fit_alone_is_explained(discord_bot, limit, output_format):
    discord_bot.karaoke(size_limit=limit, output_format=output_format)
    await discord_bot.wait_for_text("upload limit")
    assert discord_bot.api.calls_to("followup") == []
    assert await discord_bot.songs_used() == 0


@pytest.mark.parametrize(
    "discord_bot", [{"settings": {"discord": {"interaction_token_seconds": 0.3}}}], indirect=True
)
async def test_near_the_token_expiry_results_go_to_the_channel_mentioning_the_user(discord_bot):
    token = discord_bot.karaoke()  # separating a song takes longer than 0.3 s
    await discord_bot.wait_for_done(f"<@{USER_ID}> {DONE}")
    api = discord_bot.api
    assert api.interaction_texts(token)[-1] == MOVED_NOTICE
    assert api.calls_to("followup") == []
    assert all(call.status == 200 for call in api.calls)
    [delivery] = discord_bot.api.uploads(SONG_CHANNEL)
    assert delivery.kind == "send"
    assert delivery.file_names == ["clip (Instrumental).mp3", "clip (Vocals).mp3"]
    assert delivery.payload["content"] == f"<@{USER_ID}>"
    assert [str(user) for user in delivery.payload["allowed_mentions"]["users"]] == [str(USER_ID)]
    progress = [c for c in api.calls_to("send", "edit") if not c.files]
    assert progress[0].kind == "send" and progress[0].text.startswith(f"<@{USER_ID}> ")
    # One progress message, edited (not at all when the song was done by the move).
    assert all(c.kind == "edit" for c in progress[1:])
    assert progress[-1].text == f"<@{USER_ID}> {DONE}"
    assert await discord_bot.songs_used() == 1


async def test_a_token_discord_refuses_early_also_moves_to_the_channel(discord_bot):
    token = discord_bot.karaoke()
    await discord_bot.api.wait_for(lambda api: api.calls_to("download"))
    discord_bot.api.expire(token)  # Discord says no before the 15 minutes are up
    await discord_bot.wait_for_done(f"<@{USER_ID}> {DONE}")
    assert 401 in [call.status for call in discord_bot.api.calls_to("edit_original")]
    assert discord_bot.api.calls_to("followup") == []
    [delivery] = discord_bot.api.uploads(SONG_CHANNEL)
    assert len(delivery.files) == 2
    assert await discord_bot.songs_used() == 1


async def test_a_late_defer_answers_in_the_channel(discord_bot):
    """The interaction was already gone when we deferred (Discord allows 3 s)."""
    discord_bot.api.fail_next("respond", 404, 10062, "Unknown interaction")
    discord_bot.karaoke()
    await discord_bot.wait_for_done(f"<@{USER_ID}> {DONE}")
    assert discord_bot.api.calls_to("edit_original", "followup") == []
    assert len(discord_bot.api.uploads(SONG_CHANNEL)) == 1


@pytest.mark.parametrize(
    "command, fragment",
    [
        ("help", "Privacy"),
        ("quota", "10 songs"),
        ("status", "Songs waiting in the queue: 0"),
        ("cancel", "no song in progress"),
    ],
)
async def test_commands_answer_only_the_user(discord_bot, command, fragment):
    token = discord_bot.slash(command)
    await discord_bot.api.wait_for(
        lambda api: any(fragment in text for text in api.interaction_texts(token))
    )
    [defer] = [c for c in discord_bot.api.calls_to("respond") if c.interaction_token == token]
    assert defer.payload["data"]["flags"] == EPHEMERAL


async def test_admin_commands_need_a_configured_id_or_role(discord_bot):
    refused = discord_bot.slash("admin", [{"name": "stats", "type": 1, "options": []}])
    await discord_bot.api.wait_for(lambda api: api.interaction_texts(refused))
    assert "admins" in discord_bot.api.interaction_texts(refused)[0]

    by_role = discord_bot.slash(
        "admin", [{"name": "stats", "type": 1}], user_id=OTHER_USER_ID, roles=[ADMIN_ROLE_ID]
    )
    await discord_bot.api.wait_for(lambda api: api.interaction_texts(by_role))
    assert "jobs" in discord_bot.api.interaction_texts(by_role)[-1]


async def test_admin_ban_stops_a_user_and_bad_arguments_show_usage(discord_bot):
    discord_bot.slash("quota")  # the bot now knows this user
    await discord_bot.api.wait_for(lambda api: api.calls_to("edit_original"))
    ban = discord_bot.slash(
        "admin",
        [
            {
                "name": "ban",
                "type": 1,
                "options": [{"name": "user", "type": 3, "value": f"discord:{USER_ID}"}],
            }
        ],
        user_id=ADMIN_ID,
    )
    await discord_bot.api.wait_for(lambda api: "is banned" in " ".join(api.interaction_texts(ban)))
    discord_bot.karaoke()
    await discord_bot.wait_for_text("can't use this bot")
    for target, answer in (
        ("discord:nobody", "invalid user 'discord:nobody'"),  # not a Discord id
        ("discord:123456789", "discord:123456789: songs/day 5"),  # never wrote: created
    ):
        grant = discord_bot.slash(
            "admin",
            [
                {
                    "name": "grant",
                    "type": 1,
                    "options": [
                        {"name": "user", "type": 3, "value": target},
                        {"name": "songs", "type": 4, "value": 5},
                    ],
                }
            ],
            user_id=ADMIN_ID,
        )
        await discord_bot.api.wait_for(
            lambda api, grant=grant, answer=answer: answer in " ".join(api.interaction_texts(grant))
        )


@pytest.mark.parametrize(
    "discord_bot",
    [{"settings": {"rate_limit": {"requests_per_minute": 1, "burst": 1}}}],
    indirect=True,
)
async def test_a_flooding_user_is_told_to_slow_down(discord_bot):
    first = discord_bot.slash("quota")
    await discord_bot.api.wait_for(lambda api: api.interaction_texts(first))
    second = discord_bot.karaoke()
    await discord_bot.api.wait_for(lambda api: api.interaction_texts(second))
    [answer] = [c for c in discord_bot.api.calls if c.interaction_token == second]
    assert answer.text.startswith("Slow down")
    assert answer.payload["data"]["flags"] == EPHEMERAL
    assert discord_bot.api.calls_to("download") == []
