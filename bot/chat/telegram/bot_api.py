"""The Bot API's edge: its limits, its refusals as the flow's typed errors, and retries.

Telegram's rate limits are handled by ``AIORateLimiter`` (which retries ``RetryAfter``);
idempotent calls are also retried on network errors a bounded number of times. A file
over the 20 MB download limit and a result over the upload limit (413) become the
flow's typed errors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.chat.conversation.adapter import StartError
from bot.chat.conversation.types import UploadPlan
from separation.errors import OutputTooLargeError

if TYPE_CHECKING:
    from telegram.ext import Application, ContextTypes, ExtBot, JobQueue

    TelegramApplication = Application[
        ExtBot[int],  # the rate limiter's type: AIORateLimiter is a BaseRateLimiter[int]
        ContextTypes.DEFAULT_TYPE,
        dict[Any, Any],
        dict[Any, Any],
        dict[Any, Any],
        JobQueue[ContextTypes.DEFAULT_TYPE],
    ]
    """What ``Application.builder().token(...).build()`` makes: PTB's default types."""

logger = logging.getLogger(__name__)

# Bot API limits (https://core.telegram.org/bots/api#sending-files): decimal megabytes.
STANDARD_DOWNLOAD_LIMIT = 20_000_000
STANDARD_UPLOAD_LIMIT = 50_000_000
LOCAL_UPLOAD_LIMIT = 2_000_000_000
NETWORK_ATTEMPTS = 3

T = TypeVar("T")


class TelegramStartError(StartError):
    """The bot cannot start (missing or rejected token, Telegram unreachable)."""


class TelegramUploadTooLargeError(OutputTooLargeError):
    """Telegram refused a result file as too big (413); retrying cannot help."""


def is_too_big(error: TelegramError) -> bool:
    """413 Request Entity Too Large (PTB raises it as a NetworkError)."""
    return "request entity too large" in error.message.lower() or "(413)" in error.message


def is_network_error(error: BaseException) -> bool:
    """No network, DNS failure, Telegram down or timing out; not an API refusal."""
    return isinstance(error, NetworkError) and not isinstance(error, BadRequest)


async def retry_network(call: Callable[[], Awaitable[T]], *, what: str) -> T:
    """Retry an idempotent Bot API call on network errors (not on other API errors)."""
    for attempt in range(1, NETWORK_ATTEMPTS + 1):
        try:
            return await call()
        except RetryAfter as exc:  # AIORateLimiter already retried; wait once more
            if attempt == NETWORK_ATTEMPTS:
                raise
            await asyncio.sleep(
                float(
                    exc.retry_after
                    if isinstance(exc.retry_after, int | float)
                    else exc.retry_after.total_seconds()
                )
            )
        except (TimedOut, NetworkError) as exc:
            if isinstance(exc, BadRequest) or is_too_big(exc) or attempt == NETWORK_ATTEMPTS:
                raise
            logger.info("%s: network error (%s), retry %d", what, exc, attempt)
            await asyncio.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def upload_plan(*, local_mode: bool) -> UploadPlan:
    """What the Bot API lets the bot send and fetch: a local server takes 2 GB both ways."""
    if local_mode:
        return UploadPlan(max_file_bytes=LOCAL_UPLOAD_LIMIT, max_download_bytes=LOCAL_UPLOAD_LIMIT)
    return UploadPlan(
        max_file_bytes=STANDARD_UPLOAD_LIMIT, max_download_bytes=STANDARD_DOWNLOAD_LIMIT
    )
