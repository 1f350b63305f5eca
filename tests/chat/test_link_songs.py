"""Songs sent as links in the chat flow: on record like a file (its link as its
reference), fetched again from the link after a restart, and their length limit the
smaller of the per-song limit and the user's minutes left."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.chat.conversation import messages
from bot.chat.conversation.flow import ChatFlow
from bot.chat.conversation.link_source import link_max_seconds, link_ref, link_upload
from bot.links.classify import parse_link
from storage.intake import IntakeRequest
from storage.records import ChatRef, QuotaLimits, QuotaStatus, utc_now
from tests.support.chat import CHAT, USER, RecordingReplier


async def test_a_link_is_on_record_by_its_link_and_runs_like_a_file(link_flow, link_server):
    link = parse_link(link_server.url("/media/clip.mp3"))
    replier = RecordingReplier()
    handling = await link_flow.accept_song(USER, CHAT, replier, link_upload(link))
    [accepted] = await link_flow._store.intake.pending()
    assert accepted.file_ref == link_ref(link.url)
    job = await handling
    assert job is not None and job.status == "done"
    assert replier.texts[0] == messages.DOWNLOADING and replier.texts[-1].startswith("Done!")
    assert await link_flow._store.intake.pending() == []
    assert link_server.requests["/media/clip.mp3"] == 1


async def test_a_link_left_by_a_crash_is_fetched_again_from_its_link(link_flow, link_server):
    url = parse_link(link_server.url("/media/clip.mp3")).url
    accepted = await link_flow._store.intake.accept(
        USER.platform,
        USER.user_id,
        USER.display_name,
        IntakeRequest(chat=ChatRef(chat_id="1", message_id="10"), file_ref=link_ref(url)),
        now=utc_now() - timedelta(minutes=5),
    )
    replier = RecordingReplier()
    job = await link_flow.resume_song(USER, accepted, replier, None)
    assert job is not None and job.status == "done"
    assert link_server.requests["/media/clip.mp3"] == 1


async def test_links_turned_off_are_one_sentence_and_no_record(flow: ChatFlow, link_server):
    replier = RecordingReplier()
    link = parse_link(link_server.url("/media/clip.mp3"))
    assert await (await flow.accept_song(USER, CHAT, replier, link_upload(link))) is None
    assert replier.texts == [messages.LINKS_TURNED_OFF]
    assert await flow._store.intake.pending() == []
    assert sum(link_server.requests.values()) == 0


def _status(*, max_song_minutes: float | None, minutes_left: float | None) -> QuotaStatus:
    limits = QuotaLimits(
        songs_per_day=None, audio_minutes_per_day=None, max_song_minutes=max_song_minutes,
        max_concurrent_jobs=None,
    )  # fmt: skip
    return QuotaStatus(
        limits=limits, songs_used=0, audio_minutes_used=0.0, songs_left=None,
        audio_minutes_left=minutes_left, active_jobs=0, frees_at=None, is_admin=False,
        is_banned=False,
    )  # fmt: skip


def test_a_links_length_limit_is_the_least_of_the_song_limit_and_the_minutes_left():
    assert link_max_seconds(900, _status(max_song_minutes=None, minutes_left=None)) == 900
    assert link_max_seconds(900, _status(max_song_minutes=5, minutes_left=None)) == 300
    assert link_max_seconds(900, _status(max_song_minutes=None, minutes_left=2.5)) == 150
    assert link_max_seconds(900, _status(max_song_minutes=None, minutes_left=0)) == 1.0


def test_help_names_links_and_how_long_a_links_song_is_kept_only_when_links_are_on():
    on = messages.help_text(max_minutes=15, retention_hours=6, commands=[], links=True)
    off = messages.help_text(max_minutes=15, retention_hours=6, commands=[])
    assert "a video or a link" in on and "kept up to an hour" in on
    assert "link" not in off


@pytest.mark.parametrize(
    "kind", ["unsupported_site", "playlist", "live", "too_long", "too_big", "unreachable",
             "refused_address", "not_audio", "timeout"],
)  # fmt: skip
def test_each_refusal_names_the_site_made_safe_and_never_the_link(kind):
    text = messages.link_refused(kind, "\u202eevil.example\n")
    assert "evil.example" in text and "\u202e" not in text and "\n" not in text
    assert "http" not in text


def test_a_link_too_long_for_the_record_goes_on_without_one():
    longest = "https://a.example/" + "x" * (2048 - len("https://a.example/"))
    assert link_ref("https://a.example/s.mp3") == "link:https://a.example/s.mp3"
    assert link_upload(parse_link(longest)).file_ref is None
