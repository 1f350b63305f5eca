"""The one link in a message, and what is refused before anything is fetched."""

from __future__ import annotations

import pytest

from bot.links.classify import MAX_LINK_CHARS, link_in, parse_link
from bot.links.errors import LinkError


def test_a_message_with_one_link_gives_it_normalised():
    link = link_in("sing this: https://Example.COM/a/Song.MP3?x=1#part.")
    assert link is not None
    assert link.url == "https://example.com/a/Song.MP3?x=1"
    assert link.host == "example.com"
    assert link.direct


def test_a_site_page_is_not_direct():
    link = link_in("https://www.youtube.com/watch?v=dQw4w9WgXcQ")
    assert link is not None and not link.direct


def test_a_message_without_a_link_has_none():
    assert link_in("just words, no link") is None


@pytest.mark.parametrize(
    "text",
    [
        "file:///etc/passwd",
        "ftp://example.com/song.mp3",
        "gopher://127.0.0.1:70/x",
        "https://user:secret@example.com/song.mp3",
        "https://evil.example@127.0.0.1/song.mp3",
        "https://a.example/1.mp3 and https://b.example/2.mp3",
        "https://example.com/" + "a" * MAX_LINK_CHARS,
        "http://[::1/x",
        "http://example.com:99999/",
    ],
)
def test_what_is_refused_as_a_bad_link(text: str):
    with pytest.raises(LinkError) as refused:
        link_in(text)
    assert refused.value.kind == "bad_link"


def test_an_ip_literal_keeps_its_brackets():
    link = parse_link("http://[::1]:8080/song.ogg")
    assert link.host == "::1"
    assert link.url == "http://[::1]:8080/song.ogg"
