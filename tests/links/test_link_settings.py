"""[links]: names, networks and ports checked when the configuration is loaded."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError

from bot.settings.links import DEFAULT_EXTRACTORS, LinksSettings
from bot.settings.root import Settings


def test_defaults_are_on_public_only_and_without_the_generic_extractor():
    links = Settings().links
    assert links.enabled
    assert links.extractors() == DEFAULT_EXTRACTORS
    assert links.networks() == ()
    assert links.ports() == frozenset({80, 443})


def test_the_generic_extractor_brings_the_html5_reader():
    links = LinksSettings(generic_extractor=True, allowed_extractors=["SoundCloud"])
    assert links.extractors() == ("soundcloud", "generic", "html5")


def test_networks_parse_as_cidr():
    links = LinksSettings(allowed_networks=["127.0.0.0/8", "fd00::/8"])
    assert links.networks() == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"allowed_networks": ["10.0.0.1/8"]},
        {"allowed_networks": ["not a network"]},
        {"allowed_ports": [0]},
        {"allowed_extractors": ["generic"]},
        {"allowed_extractors": [".*"]},
        {"cookies": "cookies.txt"},
        {"max_redirects": 50},
    ],
)
def test_what_the_section_refuses(fields: dict[str, object]):
    with pytest.raises(ValidationError):
        LinksSettings.model_validate(fields)
