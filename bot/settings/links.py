"""``[links]``: songs from links, and what the server may fetch for them.

A link is an instruction to make the server fetch something, so everything a link may
cost is bounded here (bytes, time, redirects) and the places it may reach are named here:
public addresses on ports 80 and 443, plus the networks an operator allows (which is also
how the tests reach 127.0.0.1). There is deliberately no cookies option: the bot never
signs in to a site on a user's behalf. Links are on by default because that is how people
share songs; an operator who does not want to answer for what users fetch through the
bot turns them off with ``enabled = false``.
"""

from __future__ import annotations

import ipaddress
import re

from pydantic import Field, field_validator

from bot.settings.base import Section

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_EXTRACTOR_NAME = re.compile(r"[a-z0-9][a-z0-9:._-]{0,63}")

DEFAULT_EXTRACTORS: tuple[str, ...] = (
    "youtube", "soundcloud", "bandcamp", "vimeo", "mixcloud", "audiomack", "dailymotion",
)  # fmt: skip
"""Music and video sites' single-item extractors (yt-dlp's names); their playlist,
channel and search extractors are not in it."""


class LinksSettings(Section):
    """Songs sent as links: which sites, which networks, and the limits of one fetch."""

    enabled: bool = True
    """Accept links at all. You answer for what your users download through the bot from
    which sites: turn this off if you do not want to."""
    allowed_extractors: list[str] = Field(default_factory=lambda: list(DEFAULT_EXTRACTORS))
    """Sites a link may come from, as yt-dlp's extractor names (``yt-dlp
    --list-extractors``, case-insensitive, exact names: ``soundcloud`` is not
    ``soundcloud:set``). Direct links to audio or video files need none."""
    generic_extractor: bool = False
    """Let yt-dlp's generic extractor read any web page for a media file it embeds; off,
    only the sites above and direct file links are fetched."""
    allowed_networks: list[str] = Field(default_factory=list)
    """Networks (CIDR, such as ``10.1.0.0/16``) a link may reach although they are not
    public. Empty: public addresses only."""
    allowed_ports: list[int] = Field(default_factory=lambda: [80, 443])
    """Ports a link may connect to."""
    max_bytes: int = Field(default=200_000_000, gt=0)
    """Largest file downloaded for a link; a bigger advertised size is refused before
    the download, and a download is cut when it passes it (a server may lie)."""
    metadata_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    """Reading a site's page and the media's details, before any media is downloaded."""
    download_timeout_seconds: float = Field(default=300.0, gt=0, le=3600)
    """The whole download of one link's media (a server that trickles bytes is cut)."""
    max_redirects: int = Field(default=5, ge=0, le=20)
    """Redirects followed for a direct file link; each one is checked like the link."""

    @field_validator("allowed_extractors")
    @classmethod
    def _extractor_names(cls, names: list[str]) -> list[str]:
        cleaned = [name.strip().lower() for name in names]
        for name in cleaned:
            if not _EXTRACTOR_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not an extractor name")
            if name == "generic":
                raise ValueError('the generic extractor is switched by "generic_extractor"')
        return cleaned

    @field_validator("allowed_networks")
    @classmethod
    def _networks_parse(cls, networks: list[str]) -> list[str]:
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=True)
            except ValueError as error:
                raise ValueError(f"{network!r} is not a network in CIDR form: {error}") from None
        return networks

    @field_validator("allowed_ports")
    @classmethod
    def _ports_valid(cls, ports: list[int]) -> list[int]:
        for port in ports:
            if not 1 <= port <= 65535:
                raise ValueError(f"{port} is not a TCP port")
        return ports

    def networks(self) -> tuple[IPNetwork, ...]:
        """``allowed_networks`` parsed (the egress policy's form)."""
        return tuple(ipaddress.ip_network(network) for network in self.allowed_networks)

    def ports(self) -> frozenset[int]:
        """``allowed_ports`` as the egress policy takes them."""
        return frozenset(self.allowed_ports)

    def extractors(self) -> tuple[str, ...]:
        """The extractor names yt-dlp may use: the operator's, plus, when the generic
        extractor is on, it and ``html5`` (yt-dlp's reader of ``<audio>`` and ``<video>``
        elements, which the generic extractor calls on a page)."""
        extra = ("generic", "html5") if self.generic_extractor else ()
        return (*self.allowed_extractors, *extra)
