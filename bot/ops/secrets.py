"""Knowing which configured values are secrets, and keeping them out of text.

Tokens must never appear in logs, errors, ``check`` output or metrics. Libraries do not
know that: httpx logs every request URL and Telegram's Bot API puts the token in the URL.
So the values themselves are collected from the settings and scrubbed from any text
(``check`` output, every log record through :class:`RedactSecretsFilter`).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr

MASK = "********"
_SECRET_WORDS = ("token", "password", "secret")


def is_secret_name(name: str) -> bool:
    return any(word in name.lower() for word in _SECRET_WORDS)


def plain_value(value: object) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


def mask_url_password(text: str) -> str:
    """``postgresql://user:pw@host/db`` -> ``postgresql://user:********@host/db``."""
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return text
    if not password:
        return text
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return parts._replace(netloc=f"{user}:{MASK}@{hostport}").geturl()


def secret_values(model: BaseModel) -> set[str]:
    """Every secret's plain value, to scrub from any other text that contains it."""
    found: set[str] = set()
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            found |= secret_values(value)
        elif isinstance(value, SecretStr) or (isinstance(value, str) and is_secret_name(name)):
            found.add(plain_value(value))
        elif isinstance(value, str) and mask_url_password(value) != value:
            found.add(urlsplit(value).password or "")
    # Very short values ("1", "on") would mask unrelated text; real secrets are long.
    return {secret for secret in found if len(secret) >= 4}


def scrub(text: str, secrets: set[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


class RedactSecretsFilter(logging.Filter):
    """Replaces every known secret in a log record's final message with the mask."""

    def __init__(self, secrets: set[str]) -> None:
        super().__init__()
        self._secrets = {secret for secret in secrets if secret}

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        cleaned = scrub(message, self._secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            text = scrub(str(record.exc_info[1]), self._secrets)
            if text != str(record.exc_info[1]):
                record.exc_info = None
                record.msg = f"{record.msg} ({text})"
        return True
