"""One song's order, typed (issue 22): the bot's values and the stored form agree, and a
record's order reads back as the user asked."""

from __future__ import annotations

from typing import get_args

from bot.chat.conversation.order import SongOrder
from separation.audio.encode import STEM_MODES, EncodingSpec, OutputFormat
from separation.audio.render_options import RenderOptions
from storage.order import STORED_FORMATS, STORED_STEMS, StoredControls, StoredOrder


def test_the_stored_form_knows_every_stem_mode_and_format_and_no_other():
    """``storage`` cannot import ``separation``: its lists are kept equal here."""
    assert STORED_STEMS == STEM_MODES
    assert STORED_FORMATS == get_args(OutputFormat)


def test_an_order_round_trips_through_its_stored_form():
    order = SongOrder("four", "opus", RenderOptions(key=-2, tempo=0.9, guide_db=-12.0), "5")
    assert SongOrder.from_stored(order.stored(), owner="test") == order
    assert order.stored({"shifts": 1}).separation == {"shifts": 1}
    assert SongOrder().stored().controls is None  # no change is kept as none


def test_the_format_asked_for_changes_only_the_format():
    default = EncodingSpec(format="mp3", bitrate_kbps=192)
    assert SongOrder().encoding(default) is default
    assert SongOrder(output_format="flac").encoding(default) == EncodingSpec("flac", 192)


def test_controls_outside_todays_ranges_are_delivered_unchanged(caplog):
    stored = StoredOrder(controls=StoredControls(key=9))  # beyond -6..+6
    assert SongOrder.from_stored(stored, owner="job 3").controls == RenderOptions()
    assert "job 3: unreadable controls" in caplog.text
