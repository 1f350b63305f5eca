"""What the bot says about a link it will not fetch (``bot.links.errors.LinkError``).

One sentence per refusal kind. A sentence names the link's site (its host or yt-dlp's
extractor, cleaned by ``user_text.clean_name`` since a host is user input) and never the
link itself: a URL echoed back into markup can carry a query string, a token, or text
that reads like a message from the bot.
"""

from __future__ import annotations

from bot.chat.conversation.user_text import clean_name

LINKS_TURNED_OFF = "Links are turned off here; send the file instead."
FILE_OR_LINK = "Give /karaoke the song as a file or as a link (url), one of the two."

_MAX_SITE_CHARS = 40
"""A host shown in a sentence: enough to recognise the site."""

_SENTENCES: dict[str, str] = {
    "unsupported_site": "I can't take songs from {site}: it is not a site this bot supports.",
    "playlist": "That link from {site} is a playlist; send a link to one song.",
    "live": "That link from {site} is a live stream; send a link to a recording.",
    "too_long": "That song from {site} is longer than you can separate now.",
    "too_big": "That file from {site} is bigger than I can download.",
    "unreachable": "I couldn't reach {site}; check the link or try again later.",
    "refused_address": "I couldn't reach {site}; check the link or try again later.",
    "not_audio": "That link from {site} isn't a song I can open (no audio or video file).",
    "timeout": "Downloading from {site} took too long; try again later or send the file.",
    "bad_link": "That doesn't look like a link I can open; send one http(s) link.",
}
"""Refused on purpose (an internal address) reads like unreachable: a user learns
nothing about the server's network from which one it was."""


def link_refused(kind: str, site: str | None) -> str:
    """The sentence for a link refused for ``kind`` (a ``LinkError.kind``)."""
    shown = clean_name(site, max_chars=_MAX_SITE_CHARS) or "that site"
    sentence = _SENTENCES.get(kind, _SENTENCES["unreachable"])
    return sentence.format(site=shown)
