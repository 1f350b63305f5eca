"""Blob keys: the rules that make a key mean the same in a bucket and in a folder."""

from __future__ import annotations

import re

from bot.distributed.errors import InvalidBlobKeyError

MAX_KEY_LENGTH = 512
_KEY_CHARACTERS = re.compile(r"[A-Za-z0-9._/-]+")


def validate_key(key: str) -> str:
    """Return ``key`` if it is a valid blob key, else raise.

    Keys look like ``inputs/<sha256>`` or ``results/<cachekey>/manifest.json``. The
    rules make a key mean the same in a bucket and in a folder: only
    ``[A-Za-z0-9._/-]`` (no spaces, nothing a shell or URL would need to quote), no
    leading ``/``, no empty segments (``a//b`` is one object on S3 but ``a/b`` on
    disk), no segment starting with ``.`` (``..`` would climb out of the folder store,
    and hidden names are its temporary files), and at most 512 characters.

    Raises:
        InvalidBlobKeyError: (a ``ValueError``) the key breaks a rule.
    """
    if not isinstance(key, str):
        raise InvalidBlobKeyError(value=repr(key), reason="not a string")
    if not key:
        raise InvalidBlobKeyError(value=key, reason="empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidBlobKeyError(value=key[:40] + "...", reason=f"over {MAX_KEY_LENGTH} chars")
    if not _KEY_CHARACTERS.fullmatch(key):
        raise InvalidBlobKeyError(value=key, reason="only A-Z a-z 0-9 . _ / - are allowed")
    if key.startswith("/"):
        raise InvalidBlobKeyError(value=key, reason="starts with /")
    for segment in key.split("/"):
        if not segment:
            raise InvalidBlobKeyError(value=key, reason="has an empty segment")
        if segment == "..":
            raise InvalidBlobKeyError(value=key, reason="has a .. segment")
        if segment.startswith("."):
            raise InvalidBlobKeyError(value=key, reason="has a segment starting with .")
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if keys can start with it: empty, a valid key, or a valid key
    followed by ``/``.

    Raises:
        InvalidBlobKeyError: the prefix breaks a key rule.
    """
    if prefix == "":
        return prefix
    validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def require_prefix(prefix: str) -> None:
    """Refuse an empty prefix where deleting by prefix: wiping the whole store is never
    what a caller means.

    Raises:
        InvalidBlobKeyError: the prefix is empty or breaks a key rule.
    """
    if not validate_prefix(prefix):
        raise InvalidBlobKeyError(value=prefix, reason="deleting every blob is refused")
