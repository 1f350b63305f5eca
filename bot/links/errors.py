"""Why a link was refused or could not be fetched, as one typed exception.

The chat's messages (later) turn ``kind`` into one sentence naming the site, so no user
sentence lives here, and the raw URL is never part of what a user sees; ``detail`` is
for logs only.
"""

from __future__ import annotations

from typing import Literal, get_args

LinkErrorKind = Literal[
    "unsupported_site",
    "playlist",
    "live",
    "too_long",
    "too_big",
    "unreachable",
    "refused_address",
    "not_audio",
    "timeout",
    "bad_link",
]
"""Every reason a link can fail; one chat sentence each."""

LINK_ERROR_KINDS: tuple[str, ...] = get_args(LinkErrorKind)


class LinkError(Exception):
    """A link that was refused or could not be fetched.

    ``kind`` is one of :data:`LINK_ERROR_KINDS`; ``site`` names the site (an extractor
    or a host) when it is known, for the user's sentence; ``detail`` says more for logs
    and never holds a URL's query.
    """

    def __init__(self, kind: LinkErrorKind, *, site: str | None = None, detail: str = "") -> None:
        if kind not in LINK_ERROR_KINDS:
            raise ValueError(f"unknown link error kind {kind!r}")
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind: LinkErrorKind = kind
        self.site = site
        self.detail = detail
