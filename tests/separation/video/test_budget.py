"""Bitrates that make a video fit the chats' upload limits (the render checks the size
too: tests/separation/video/test_render.py)."""

from __future__ import annotations

import pytest

from separation.errors import OutputTooLargeError
from separation.video.budget import (
    AUDIO_BITRATES_KBPS,
    MAX_VIDEO_KBPS,
    MIN_VIDEO_KBPS,
    choose_bitrates,
)

TELEGRAM = 50_000_000
DISCORD = 10 * 2**20
FIVE_MINUTES = 300.0


@pytest.mark.parametrize("limit", [TELEGRAM, DISCORD])
def test_a_five_minute_song_fits_both_chats(limit: int) -> None:
    bitrates = choose_bitrates(FIVE_MINUTES, limit)
    worst_case = (bitrates.audio_kbps + bitrates.video_kbps) * 1000 / 8 * FIVE_MINUTES
    worst_case += bitrates.buffer_kbits * 1000 / 8  # one VBV buffer of overshoot
    assert worst_case < limit
    assert bitrates.video_kbps >= MIN_VIDEO_KBPS


def test_telegram_gets_the_best_sound_and_discord_still_good_sound() -> None:
    assert choose_bitrates(FIVE_MINUTES, TELEGRAM).audio_kbps == AUDIO_BITRATES_KBPS[0]
    assert choose_bitrates(FIVE_MINUTES, DISCORD).audio_kbps >= 128


def test_no_limit_means_the_ceilings() -> None:
    bitrates = choose_bitrates(FIVE_MINUTES, None)
    assert (bitrates.audio_kbps, bitrates.video_kbps) == (AUDIO_BITRATES_KBPS[0], MAX_VIDEO_KBPS)


def test_a_limit_nothing_fits_is_refused_before_rendering() -> None:
    with pytest.raises(OutputTooLargeError):
        choose_bitrates(15 * 60.0, 2_000_000)
