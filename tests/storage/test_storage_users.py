"""Users: identity per platform, flags, overrides and the PLATFORM:ID form admins type."""

from __future__ import annotations

import re

import pytest

from storage import InvalidGrantError, InvalidUserRefError, UserNotFoundError, parse_user_ref
from storage.users import parse_admin_ref


async def test_first_sight_creates_and_later_sights_refresh(store, clock):
    created = await store.users.upsert("telegram", "12345", "Ann")
    clock.advance(hours=3)
    seen = await store.users.upsert("telegram", "12345", "Ann B.")
    assert seen.id == created.id
    assert seen.display_name == "Ann B."
    assert seen.first_seen == clock.start
    assert seen.last_seen == clock.now
    assert not seen.is_banned and not seen.is_admin
    assert seen.ref == "telegram:12345"


async def test_the_same_id_on_two_platforms_is_two_users(store):
    on_telegram = await store.users.upsert("telegram", "7", "A")
    on_discord = await store.users.upsert("discord", "7", "B")
    assert on_telegram.id != on_discord.id
    assert (await store.users.find("discord:7")).display_name == "B"


async def test_an_empty_display_name_keeps_the_known_one(store):
    await store.users.upsert("discord", "7", "Bo")
    assert (await store.users.upsert("discord", "7", "")).display_name == "Bo"


async def test_unknown_users_are_a_typed_error(store):
    with pytest.raises(UserNotFoundError, match="no such user: telegram:404"):
        await store.users.find("telegram:404")


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("telegram-12", "expected PLATFORM:ID"),
        ("myspace:1", "unknown platform 'myspace'"),
        ("telegram:", "1 to 64 characters"),
        (":12", "unknown platform ''"),
        ("telegram:a b", "must not contain spaces"),
        ("telegram:" + "9" * 65, "1 to 64 characters"),
    ],
)
def test_bad_user_refs_are_typed_errors(ref, reason):
    with pytest.raises(InvalidUserRefError, match=reason) as caught:
        parse_user_ref(ref)
    assert caught.value.ref == ref
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("telegram:12", ("telegram", "12")),
        ("discord:1:2", ("discord", "1:2")),
        (" discord:me ", ("discord", "me")),
    ],
)
def test_good_user_refs_are_split(ref, expected):
    assert parse_user_ref(ref) == expected


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("telegram:abc", "a telegram id is a number, e.g. telegram:12345"),
        ("discord:1:2", "a discord id is a number"),
        ("telegram:-5", "a telegram id is a number"),
        ("telegram:١٢", "a telegram id is a number"),  # Arabic-Indic digits
        ("cli:me", "unknown platform 'cli' (expected telegram, discord)"),
        ("nosuch:1", "unknown platform 'nosuch'"),
        ("telegram-12", "expected PLATFORM:ID"),
    ],
)
async def test_admin_refs_are_chat_users_with_numeric_ids(store, ref, reason):
    with pytest.raises(InvalidUserRefError, match=re.escape(reason)):
        parse_admin_ref(ref)
    with pytest.raises(InvalidUserRefError, match=re.escape(reason)):
        await store.users.find_or_create(ref)
    with pytest.raises(InvalidUserRefError, match=re.escape(reason)):
        await store.users.find_chat_user(ref)
    assert (await store.stats.collect()).users == 0


async def test_admins_can_name_a_user_before_they_first_write(store, clock):
    created = await store.users.find_or_create(" telegram:12345 ")
    assert created.ref == "telegram:12345" and created.display_name == ""
    assert not created.is_banned and not created.is_admin
    await store.users.set_banned(created, True)
    clock.advance(hours=1)
    again = await store.users.find_or_create("telegram:12345")
    assert again.id == created.id and again.is_banned
    assert again.last_seen == clock.start  # naming a user is not seeing them
    seen = await store.users.upsert("telegram", "12345", "Ann")
    assert seen.id == created.id and seen.display_name == "Ann" and seen.is_banned
    assert (await store.users.find_chat_user("telegram:12345")).display_name == "Ann"
    with pytest.raises(UserNotFoundError):
        await store.users.find_chat_user("discord:12345")


async def test_upserting_an_unknown_platform_is_refused(store):
    with pytest.raises(InvalidUserRefError, match="unknown platform"):
        await store.users.upsert("myspace", "1", "Tom")


async def test_grants_set_overrides_and_leave_the_rest(store):
    user = await store.users.upsert("telegram", "1", "Ann")
    user = await store.users.grant(user, songs_per_day=20, audio_minutes_per_day=90.5)
    user = await store.users.grant(user, max_concurrent_jobs=4)
    assert (
        user.songs_per_day_override,
        user.audio_minutes_per_day_override,
        user.max_song_minutes_override,
        user.max_concurrent_jobs_override,
    ) == (20, 90.5, None, 4)
    user = await store.users.reset_limits(user)
    assert user.songs_per_day_override is None and user.max_concurrent_jobs_override is None


@pytest.mark.parametrize(
    ("grant", "field"),
    [
        ({"songs_per_day": -1}, "songs"),
        ({"audio_minutes_per_day": -0.5}, "minutes"),
        ({"audio_minutes_per_day": float("nan")}, "minutes"),
        ({"max_song_minutes": 0}, "max song minutes"),
        ({"max_concurrent_jobs": 0}, "concurrent jobs"),
        ({"songs_per_day": 2.5}, "songs"),
        ({"songs_per_day": True}, "songs"),
    ],
)
async def test_bad_grants_are_typed_errors_and_change_nothing(store, grant, field):
    user = await store.users.upsert("telegram", "1", "Ann")
    await store.users.grant(user, songs_per_day=5)
    with pytest.raises(InvalidGrantError) as caught:
        await store.users.grant(user, **({"songs_per_day": 7} | grant))
    assert caught.value.field == field
    assert (await store.users.find("telegram:1")).songs_per_day_override == 5


async def test_ban_and_admin_flags(store):
    user = await store.users.upsert("discord", "5", "Eve")
    assert (await store.users.set_banned(user, True)).is_banned
    assert not (await store.users.set_banned(user, False)).is_banned
    assert (await store.users.set_admin(user, True)).is_admin
    assert (await store.users.find("discord:5")).is_admin


async def test_long_display_names_are_cut(store):
    user = await store.users.upsert("telegram", "1", "x" * 1000)
    assert len(user.display_name) == 255
