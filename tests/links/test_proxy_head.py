"""A proxy request head read into what goes upstream: origin form, the checked host in
``Host``, this hop's headers dropped, and ``Connection: close``."""

from __future__ import annotations

import pytest

from bot.links.proxy_head import BadProxyRequestError, ProxyRequest, parse_request_head


def test_a_plain_request_is_rewritten_for_one_answer_from_the_checked_host() -> None:
    request = parse_request_head(
        b"GET http://Media.Example.com:8080/a/b.mp3?x=1#frag HTTP/1.1\r\n"
        b"Host: 10.0.0.1\r\nProxy-Authorization: Basic eA==\r\nConnection: keep-alive, X-Drop\r\n"
        b"X-Drop: 1\r\nRange: bytes=0-\r\nUser-Agent: t\r\n\r\n"
    )
    assert (request.method, request.host, request.port) == ("GET", "Media.Example.com", 8080)
    assert request.upstream_head == (
        b"GET /a/b.mp3?x=1 HTTP/1.1\r\nHost: Media.Example.com:8080\r\nRange: bytes=0-\r\n"
        b"User-Agent: t\r\nConnection: close\r\n\r\n"
    )
    assert request.log_target == "GET Media.Example.com:8080"


@pytest.mark.parametrize(
    ("head", "host", "port"),
    [
        (b"CONNECT example.com:443 HTTP/1.1\r\n\r\n", "example.com", 443),
        (b"CONNECT [::1]:443 HTTP/1.1\r\n\r\n", "[::1]", 443),
        (b"CONNECT 0x7f000001:443 HTTP/1.1\r\n\r\n", "0x7f000001", 443),
        (b"GET http://::1/ HTTP/1.1\r\n\r\n", "::1", 80),
        (b"GET http://[::1]:8080/ HTTP/1.1\r\n\r\n", "[::1]", 8080),
    ],
)
def test_targets_keep_the_host_as_spelt_for_the_address_check(
    head: bytes, host: str, port: int
) -> None:
    request = parse_request_head(head)
    assert (request.host, request.port) == (host, port)
    assert isinstance(request, ProxyRequest)


@pytest.mark.parametrize(
    "target",
    [
        "http://a.test\\@10.0.0.1/",
        "http://10.0.0.1%2f@a.test/",
        "http://user@a.test/",
        "http://a.test:0/",
        "http://a.test:80x/",
        "http:///path",
        "ftp://a.test/",
    ],
)
def test_targets_that_could_be_read_two_ways_are_refused(target: str) -> None:
    with pytest.raises(BadProxyRequestError):
        parse_request_head(f"GET {target} HTTP/1.1\r\n\r\n".encode())
