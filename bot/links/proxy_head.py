"""A forward proxy's request head, read into a typed request before anything connects.

Only two shapes are proxied: ``CONNECT host:port`` (a tunnel for HTTPS) and a plain
``http://`` request in absolute form, which is rewritten to origin form with
``Connection: close`` so the upstream answers one request and the tunnel ends. Anything
else (origin form, ``https://`` in absolute form, a bad port) is a bad request, refused
before the host is even looked at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from bot.links.egress import BadHostError, parse_host

_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "host",
    }
)
"""Headers for this hop only (RFC 9110 §7.6.1), dropped before the request goes on;
``Host`` is rebuilt from the target so it always names the checked host."""


class BadProxyRequestError(ValueError):
    """The client's request is not one this proxy forwards (answered ``400``)."""


@dataclass(frozen=True)
class ProxyRequest:
    """One request to the proxy: where it wants to go and, for plain HTTP, what to send.

    ``host`` is as the client wrote it (an address spelling or a name), ``port`` an
    integer; ``upstream_head`` is the head to send upstream (``None`` for ``CONNECT``).
    ``log_target`` names host and port only, never the path or query.
    """

    method: str
    host: str
    port: int
    upstream_head: bytes | None

    @property
    def log_target(self) -> str:
        return f"{self.method} {self.host}:{self.port}"


def parse_request_head(head: bytes) -> ProxyRequest:
    """Read a request head (up to and including the blank line) into a request.

    Raises:
        BadProxyRequestError: not a ``CONNECT`` or absolute-form ``http://`` request,
            or a malformed line, header, host or port.
    """
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError as error:
        raise BadProxyRequestError("request head is not ASCII") from error
    lines = text.split("\r\n")
    request_line, header_lines = lines[0], [line for line in lines[1:] if line]
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadProxyRequestError("malformed request line")
    method, target, version = parts
    headers = [_split_header(line) for line in header_lines]
    if method == "CONNECT":
        host, port = _split_authority(target, default_port=None)
        return ProxyRequest(method, host, port, None)
    return _plain_request(method, target, version, headers)


def _split_header(line: str) -> tuple[str, str]:
    name, colon, value = line.partition(":")
    if not colon or not name or name != name.strip() or " " in name:
        raise BadProxyRequestError("malformed header line")
    return name, value.strip()


def _split_authority(authority: str, *, default_port: int | None) -> tuple[str, int]:
    """``host:port`` (IPv6 in brackets) into a checked host spelling and a port."""
    if authority.startswith("["):
        end = authority.find("]")
        host, rest = authority[: end + 1], authority[end + 1 :]
        if end < 0 or (rest and not rest.startswith(":")):
            raise BadProxyRequestError("malformed IPv6 authority")
        port_text = rest[1:] if rest else None
    elif authority.count(":") > 1 and default_port is not None:
        # httpx 0.28 writes an IPv6 literal without brackets in absolute form
        # (``GET http://::1/``): read it whole, as the address it is, on the default port.
        host, port_text = authority, None
    else:
        host, colon, port_text_or_empty = authority.rpartition(":")
        if not colon:
            host, port_text = authority, None
        else:
            port_text = port_text_or_empty
    if port_text is None:
        if default_port is None:
            raise BadProxyRequestError("CONNECT without a port")
        port = default_port
    elif port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536:
        port = int(port_text)
    else:
        raise BadProxyRequestError("malformed port")
    try:
        parse_host(host)
    except BadHostError as error:
        raise BadProxyRequestError(str(error)) from error
    return host, port


def _plain_request(
    method: str, target: str, version: str, headers: list[tuple[str, str]]
) -> ProxyRequest:
    if not method.isalpha() or not method.isupper():
        raise BadProxyRequestError("malformed method")
    if not target.lower().startswith("http://"):
        raise BadProxyRequestError("only CONNECT and absolute http:// requests are proxied")
    split = urlsplit(target)
    if split.username is not None or split.password is not None or not split.netloc:
        raise BadProxyRequestError("no host, or credentials in the URL")
    host, port = _split_authority(split.netloc, default_port=80)
    path = (split.path or "/") + (f"?{split.query}" if split.query else "")
    dropped = _HOP_BY_HOP | {
        name.strip().lower()
        for key, value in headers
        if key.lower() == "connection"
        for name in value.split(",")
    }
    kept = [f"{name}: {value}" for name, value in headers if name.lower() not in dropped]
    named = f"[{host}]" if ":" in host and not host.startswith("[") else host
    host_header = named if port == 80 else f"{named}:{port}"
    lines = [f"{method} {path} {version}", f"Host: {host_header}", *kept, "Connection: close"]
    return ProxyRequest(method, host, port, ("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
