"""A message's text → the one link in it, checked before anything is fetched.

Only ``http`` and ``https`` links are taken: another scheme (``file:``, ``ftp:``,
``gopher:``) would make a fetcher read what the bot should never read. A link with a
user name or password (``https://user:pass@host/``) is refused: it is how a link hides
its real host from a reader, and the bot never signs in anywhere. Whether a link is a
direct media file is first guessed from its path's suffix; the response's content type
confirms it (``bot.links.direct``).
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from pathlib import PurePosixPath

from bot.links.errors import LinkError

MAX_LINK_CHARS = 2048
"""Longer links are not songs (and no browser shares one that long)."""

MEDIA_SUFFIXES = frozenset({
    ".mp3", ".m4a", ".aac", ".flac", ".wav", ".ogg", ".oga", ".opus", ".weba", ".webm",
    ".mp4", ".m4v", ".mkv", ".mka", ".mov", ".aif", ".aiff", ".wma", ".wv", ".ape",
})  # fmt: skip
"""Path suffixes of audio and video files, the containers the decoder opens."""

_CANDIDATE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]{0,15}://\S+")
"""Anything shaped like a URL, whatever its scheme (so other schemes are seen, and
refused, rather than ignored)."""
_TRAILING = ".,;:!?)]}>'\""
"""Punctuation that ends a sentence around a link rather than the link itself."""


@dataclass(frozen=True)
class Link:
    """A link a user sent, checked and normalised."""

    url: str
    host: str
    """The host, lower-case (IDNA-encoded for a non-ASCII name): the site a message names."""
    direct: bool
    """The path ends like a media file; a site page otherwise."""


def link_in(text: str) -> Link | None:
    """The one link in ``text``, or None when there is none.

    Raises:
        LinkError: ``bad_link`` for more than one link, another scheme than http(s), a
            user name or password, no host, or a link longer than :data:`MAX_LINK_CHARS`.
    """
    candidates = [match.group(0).rstrip(_TRAILING) for match in _CANDIDATE.finditer(text)]
    if not candidates:
        return None
    if len(candidates) > 1:
        raise LinkError("bad_link", detail=f"{len(candidates)} links in one message")
    return parse_link(candidates[0])


def parse_link(url: str) -> Link:
    """``url`` checked as a link the bot may fetch (also for a redirect's target).

    Raises:
        LinkError: ``bad_link``, as for :func:`link_in`.
    """
    if len(url) > MAX_LINK_CHARS:
        raise LinkError("bad_link", detail=f"a link of {len(url)} characters")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise LinkError("bad_link", detail=f"unparsable link: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise LinkError("bad_link", detail=f"scheme {scheme[:16]!r}")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise LinkError("bad_link", detail="a user name or password in the link")
    host = _host(parts.hostname or "")
    netloc = host if port is None else f"{host}:{port}"
    if ":" in host:
        netloc = f"[{host}]" if port is None else f"[{host}]:{port}"
    normal = urllib.parse.urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
    suffix = PurePosixPath(urllib.parse.unquote(parts.path)).suffix.lower()
    return Link(url=normal, host=host, direct=suffix in MEDIA_SUFFIXES)


def _host(hostname: str) -> str:
    if not hostname:
        raise LinkError("bad_link", detail="no host")
    try:
        return hostname.encode("idna").decode("ascii").lower()
    except UnicodeError:
        if ":" in hostname:  # an IPv6 literal
            return hostname.lower()
        raise LinkError("bad_link", detail="a host name that is not a name") from None
