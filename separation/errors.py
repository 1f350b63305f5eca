"""Typed errors of the separation engine.

Callers must be able to tell a bad upload (the user's problem, answered with a friendly
sentence and no quota charged) from a broken server (ours, logged with a reference id).
So every input problem derives from :class:`AudioInputError` and carries a one-line
``user_message``; everything else derives from :class:`SeparationError`, except the
failure of a service on the internet (:class:`LyricsServiceError`), which is neither.
"""

from __future__ import annotations

import math
from typing import Literal

LyricsServiceFailure = Literal[
    "unreachable", "timeout", "status", "redirect", "too_large", "malformed"
]
"""What went wrong in a :class:`LyricsServiceError`."""


def _format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def _format_bytes(size: int) -> str:
    # Decimal units, as the chat platforms state their limits ("20 MB").
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


class AudioInputError(ValueError):
    """The input cannot be separated; the user should send something else."""

    kind = "bad_input"

    @property
    def user_message(self) -> str:
        return str(self)


class EmptyAudioError(AudioInputError):
    kind = "empty"

    def __init__(self) -> None:
        super().__init__("That file is empty (or contains no sound at all).")


class NotAudioError(AudioInputError):
    kind = "not_audio"

    def __init__(self, *, detail: str = "") -> None:
        self.detail = detail
        super().__init__(
            "That file doesn't look like audio I can read. Send an MP3, M4A, "
            "OGG, FLAC, WAV or a video with sound."
        )


class CorruptAudioError(AudioInputError):
    kind = "corrupt"

    def __init__(self, *, detail: str = "") -> None:
        self.detail = detail
        super().__init__(
            "That audio file seems damaged or cut off; I couldn't decode it. "
            "Try re-exporting or re-downloading it."
        )


class InputLimitError(AudioInputError):
    """Reading the file went past a time, memory or size limit (see ``separation.audio.sandbox``).

    A real song never gets here; a crafted or pathological file does, and is refused
    like any other bad upload (no quota charged, ``detail`` logged).
    """

    kind = "input_limit"

    def __init__(self, *, detail: str) -> None:
        self.detail = detail
        super().__init__(
            "Reading that file took far too long or needed too much memory, so I stopped. "
            "Please send an ordinary audio file."
        )


class AudioTooLongError(AudioInputError):
    kind = "too_long"

    def __init__(self, *, duration_seconds: float | None, limit_seconds: float) -> None:
        self.duration_seconds = duration_seconds
        self.limit_seconds = limit_seconds
        if duration_seconds is None:
            length = "longer than"
        else:
            length = f"{_format_duration(duration_seconds)} long; the limit is"
        super().__init__(
            f"That song is {length} {_format_duration(limit_seconds)}. Please send a shorter one."
        )


class AudioTooLargeError(AudioInputError):
    kind = "too_large"

    def __init__(self, *, size_bytes: int, limit_bytes: int) -> None:
        self.size_bytes = size_bytes
        self.limit_bytes = limit_bytes
        super().__init__(
            f"That file is {_format_bytes(size_bytes)}; the limit is {_format_bytes(limit_bytes)}."
        )


class InvalidRenderOptionError(ValueError):
    """A karaoke control (key, tempo, guide vocal) is out of range
    (``separation.rendering.controls``).

    Not an :class:`AudioInputError`: the song is fine, the request is not. The message is
    one sentence fit to show the user as is.
    """

    kind = "bad_render_option"

    def __init__(self, *, option: str, value: object, allowed: str) -> None:
        self.option = option
        self.value = value
        self.allowed = allowed
        super().__init__(f"The {option} can't be {value}: it must be {allowed}.")

    @property
    def user_message(self) -> str:
        return str(self)


class LyricsInputError(ValueError):
    """Lyrics that cannot be used (``separation.lyrics``): too long, not text, no words,
    or untimed where alignment is off. Like :class:`InvalidRenderOptionError`, the song is
    fine and the request is not; the message is one sentence fit to show the user.
    Subclasses (in ``separation.lyrics.limits``, also importable from
    ``separation.lyrics.parse``) say which."""

    kind = "bad_lyrics"

    @property
    def user_message(self) -> str:
        return str(self)


class LyricsServiceError(RuntimeError):
    """The synced-lyrics service (LRCLIB, ``separation.lyrics.lrclib``) gave no usable
    answer: unreachable, too slow, an error status, a redirect, an answer too big or not
    shaped like its API.

    Neither the user's fault (:class:`LyricsInputError`) nor a crash of ours
    (:class:`SeparationError`): a service on the internet failed. The caller logs it and
    goes on as if no lyrics were found (the user is asked for them); nothing here is
    shown to the user. ``kind`` says which failure, for the log and the tests:

    - ``"unreachable"``: connecting or reading failed (refused, reset, DNS, TLS);
    - ``"timeout"``: the whole lookup took longer than its limit (a slow drip included);
    - ``"status"``: an HTTP status other than 200 or 404;
    - ``"redirect"``: a 3xx answer; redirects are never followed, so no request goes
      anywhere but the configured base URL;
    - ``"too_large"``: the answer is bigger than the client's ``max_bytes``;
    - ``"malformed"``: not JSON, not the documented schema, or a compressed body that was
      not asked for.
    """

    def __init__(self, kind: LyricsServiceFailure, detail: str) -> None:
        self.kind: LyricsServiceFailure = kind
        self.detail = detail
        super().__init__(f"lyrics service: {kind}: {detail}")


class SeparationError(RuntimeError):
    """The server failed; not the user's fault."""

    kind = "internal"


class FFmpegNotFoundError(SeparationError):
    kind = "ffmpeg_missing"


class HeaderReaderError(SeparationError):
    """The header reader (PyAV in a child Python, ``separation.audio.probe``) cannot run here:
    a broken installation, never a bad upload."""

    kind = "header_reader_missing"


class AudioExportError(SeparationError):
    kind = "export"

    def __init__(self, message: str, *, path: str = "", stderr: str = "") -> None:
        self.path = path
        self.stderr = stderr
        super().__init__(message)


class OutputTooLargeError(SeparationError):
    """Even the lowest acceptable bitrate would not fit the platform's upload limit."""

    kind = "output_too_large"

    def __init__(self, *, duration_seconds: float, budget_bytes: int, min_bitrate: int) -> None:
        self.duration_seconds = duration_seconds
        self.budget_bytes = budget_bytes
        self.min_bitrate = min_bitrate
        super().__init__(
            f"A {_format_duration(duration_seconds)} result does not fit in "
            f"{_format_bytes(budget_bytes)} even at {min_bitrate} kb/s."
        )


class VideoRenderError(SeparationError):
    """ffmpeg could not make a karaoke video (``separation.video``): ours, not the user's."""

    kind = "video_render"

    def __init__(self, message: str, *, stderr: str = "") -> None:
        self.stderr = stderr
        super().__init__(message)


class ModelNotAvailableError(SeparationError):
    """Weights are missing locally and cannot be fetched; the message says how to get them."""

    kind = "model_missing"


class DeviceError(SeparationError):
    kind = "device"


class OutOfMemoryError(SeparationError):
    kind = "out_of_memory"


# -- the worker pool (separation.pool) ------------------------------------------------------
class PoolError(SeparationError):
    """The pool refused, stopped or could not finish a job; ``user_message`` says so."""

    kind = "pool"
    _user_text = "Something went wrong on our side while separating that song."

    @property
    def user_message(self) -> str:
        return self._user_text


class StemsExpiredError(PoolError):
    """A re-render (key, tempo, guide vocal) was asked of a song whose lossless stems are
    no longer in the result cache (evicted by age or size, or never kept).

    The decision (issue 15): explain, and let the user send the song again, which is a
    new song. Re-running the model silently would charge a song for a button press, and
    the upload itself is not kept after its job.
    """

    kind = "stems_expired"
    _user_text = (
        "I no longer keep the separated parts of that song, so I can't change it. "
        "Send the song again (it counts as a new song)."
    )

    def __init__(self, cache_key: str) -> None:
        self.cache_key = cache_key
        super().__init__(f"no lossless stems in the cache for {cache_key[:16]}")


class RenderUnavailableError(PoolError):
    """Karaoke controls were asked of a backend that keeps no stems (a backend that does
    not implement ``RenderingBackend``)."""

    kind = "render_unavailable"
    _user_text = "Changing the key or tempo isn't available on this server yet."

    def __init__(self) -> None:
        super().__init__("this backend keeps no stems to re-render from")


class PoolBusyError(PoolError):
    """The global queue is full; submission failed at once and nothing was queued."""

    kind = "busy"

    def __init__(self, *, retry_after_seconds: float) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__(f"the queue is full; retry in about {retry_after_seconds:.0f} s")

    @property
    def user_message(self) -> str:
        wait = _format_duration(self.retry_after_seconds)
        return f"I'm very busy right now. Please try again in about {wait}."


class RendersBusyError(PoolError):
    """Too many re-renders are queued or running (``PoolConfig.max_queued_renders``); this
    one was refused at once and nothing was queued (issue 20: renders are extras, and a
    storm of them must not grow without bound behind the songs that go first)."""

    kind = "renders_busy"

    def __init__(self, *, retry_after_seconds: float) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__(f"too many renders queued; retry in about {retry_after_seconds:.0f} s")

    @property
    def user_message(self) -> str:
        wait = max(1, math.ceil(self.retry_after_seconds))
        return f"I'm busy with other songs right now, try again in {wait} s."


class UserJobLimitError(PoolError):
    """The user already has the maximum number of songs queued or running."""

    kind = "user_limit"

    def __init__(self, *, limit: int) -> None:
        self.limit = limit
        songs = "1 song" if limit == 1 else f"{limit} songs"
        super().__init__(f"the user already has {songs} queued or running")

    @property
    def user_message(self) -> str:
        if self.limit == 1:
            return "You already have a song in progress; wait for it to finish."
        return f"You already have {self.limit} songs in progress; wait for one to finish."


class JobTimeoutError(PoolError):
    kind = "timeout"
    _user_text = "Separating that song took too long, so I stopped. Please try again later."

    def __init__(self, *, limit_seconds: float) -> None:
        self.limit_seconds = limit_seconds
        super().__init__(f"the job ran longer than its limit of {limit_seconds:.0f} s")


class JobCancelledError(PoolError):
    kind = "cancelled"
    _user_text = "Cancelled."

    def __init__(self) -> None:
        super().__init__("the job was cancelled")


class PoolShutdownError(PoolError):
    kind = "shutdown"
    _user_text = "The bot is restarting and your song was not finished. Please send it again."

    def __init__(self) -> None:
        super().__init__("the pool shut down before the job finished")


class WorkerLostError(PoolError):
    """A distributed job's workers died (or were cut off) on every allowed attempt."""

    kind = "worker_lost"
    _user_text = (
        "The servers separating your song kept failing, so I gave up; it was not counted. "
        "Please try again later."
    )

    def __init__(self, *, attempts: int) -> None:
        self.attempts = attempts
        super().__init__(f"no worker finished the job in {attempts} attempts")


class JobFailedError(PoolError):
    """An unexpected exception (a bug, a broken model) failed this job; the cause is chained."""

    kind = "internal"
