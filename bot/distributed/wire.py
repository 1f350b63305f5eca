"""What travels between front-ends and workers, as JSON: a job, its progress, its outcome.

Front-ends and workers may run different releases for a while during a rolling update,
so every message is plain JSON with named fields (no pickles) and readers ignore fields
they do not know. Errors cross as their class name and keyword fields, so a front-end
answers "that file is damaged" exactly as the local backend would.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import separation.errors as separation_errors
from bot.distributed.video_wire import video_from_json, video_to_json
from separation.audio.encode import EncodingSpec, is_stem_mode
from separation.audio.ffmpeg import ProbeResult
from separation.audio.render_options import RenderOptions
from separation.cache.extras import tag_lyrics_of
from separation.cpu_budget import Lane
from separation.errors import AudioInputError, JobFailedError, LyricsInputError, SeparationError
from separation.jobs import (
    Decoded,
    ProgressEvent,
    Queued,
    RenderRequest,
    Running,
    SeparationRequest,
)
from separation.lyrics.model import Timing

TASK_NAME = "karaoke.separate"
"""The procrastinate task every worker registers and every front-end defers."""
RENDER_TASK_NAME = "karaoke.render"
"""A karaoke-control render (key, tempo, guide vocal) from a song's shared stems."""

MANIFEST_NAME = "manifest.json"
_TYPED_ERRORS = (AudioInputError, SeparationError, LyricsInputError)
"""Errors that cross the wire as themselves: the user's input (a song, words) or ours."""
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def progress_channel(queue_name: str) -> str:
    """The PostgreSQL NOTIFY channel of a queue's progress and outcome messages."""
    return f"karaoke_progress_{queue_name}"


def input_key(job_id: str) -> str:
    """Where a job's upload waits for a worker (one object per job, deleted when done)."""
    return f"inputs/{checked_job_id(job_id)}.upload"


def result_prefix(cache_key: str) -> str:
    """Where a result lives in the shared cache: keyed as the local cache is."""
    if not re.fullmatch(r"[0-9a-f]{64}", cache_key):
        raise ValueError(f"not a cache key: {cache_key!r}")
    return f"results/{cache_key}/"


def checked_job_id(job_id: str) -> str:
    if not _JOB_ID.fullmatch(job_id):
        raise ValueError(f"job id {job_id!r} must be 1-64 letters, digits, - or _")
    return job_id


# -- the job --------------------------------------------------------------------------------
def request_to_payload(request: SeparationRequest, *, job_id: str) -> dict[str, Any]:
    """The queued job's arguments (the input itself travels through the blob store)."""
    probe = dataclasses.asdict(request.probe) if request.probe is not None else None
    return {
        "job_id": checked_job_id(job_id),
        "user_ref": request.user_ref,
        "input_key": input_key(job_id),
        "input_name": request.input_path.name,
        "input_sha256": request.input_sha256,
        "stems": request.stems,
        "encoding": dataclasses.asdict(request.encoding),
        "max_output_bytes": request.max_output_bytes,
        "min_mp3_bitrate": request.min_mp3_bitrate,
        "fallback_title": request.fallback_title or request.input_path.stem,
        "probe": probe,
    }


def request_from_payload(payload: Mapping[str, Any], input_path: Path) -> SeparationRequest:
    """The request a worker's pool runs, reading the input from ``input_path``."""
    stems = payload.get("stems")
    if not is_stem_mode(stems):
        raise ValueError(f"job {payload.get('job_id')!r}: no stem mode {stems!r}")
    digest = payload.get("input_sha256")
    probe_fields = payload.get("probe")
    probe = None
    if isinstance(probe_fields, Mapping):
        known = {f.name for f in dataclasses.fields(ProbeResult)}
        probe = ProbeResult(**{k: v for k, v in probe_fields.items() if k in known})
    return SeparationRequest(
        user_ref=str(payload["user_ref"]),
        input_path=input_path,
        input_sha256=digest if isinstance(digest, str) else None,
        stems=stems,
        encoding=_encoding(payload),
        max_output_bytes=payload.get("max_output_bytes"),
        min_mp3_bitrate=int(payload.get("min_mp3_bitrate", 96)),
        fallback_title=payload.get("fallback_title"),
        job_id=checked_job_id(str(payload["job_id"])),
        probe=probe,
    )


def render_to_payload(request: RenderRequest, *, job_id: str) -> dict[str, Any]:
    """A render job's arguments (the stems travel through the blob store)."""
    return {
        "job_id": checked_job_id(job_id),
        "cache_key": request.cache_key,
        "options": dataclasses.asdict(request.options),
        "encoding": dataclasses.asdict(request.encoding),
        "max_output_bytes": request.max_output_bytes,
        "min_mp3_bitrate": request.min_mp3_bitrate,
        "lane": int(request.lane),
        "video": None if request.video is None else video_to_json(request.video),
    }


def render_from_payload(payload: Mapping[str, Any]) -> RenderRequest:
    """The render a worker's pool runs.

    Raises:
        InvalidRenderOptionError, ValueError, KeyError: a payload we did not write.
    """
    result_prefix(str(payload["cache_key"]))  # a cache key, not a path
    options = dict(payload.get("options") or {})
    video = payload.get("video")
    return RenderRequest(
        cache_key=str(payload["cache_key"]),
        options=RenderOptions(
            key=int(options.get("key", 0)),
            tempo=float(options.get("tempo", 1.0)),
            guide_db=None if options.get("guide_db") is None else float(options["guide_db"]),
        ),
        encoding=_encoding(payload),
        max_output_bytes=payload.get("max_output_bytes"),
        min_mp3_bitrate=int(payload.get("min_mp3_bitrate", 96)),
        lane=Lane(int(payload.get("lane", Lane.AFTER_THE_FACT))),
        video=None if video is None else video_from_json(video),
    )


def _encoding(payload: Mapping[str, Any]) -> EncodingSpec:
    known = {f.name for f in dataclasses.fields(EncodingSpec)}
    return EncodingSpec(
        **{k: v for k, v in dict(payload.get("encoding") or {}).items() if k in known}
    )


# -- progress -------------------------------------------------------------------------------
def progress_message(job_id: str, attempt: int, event: ProgressEvent) -> str | None:
    """A NOTIFY payload for the events a front-end shows (None for the others)."""
    body: dict[str, Any]
    if isinstance(event, Queued):
        body = {"type": "queued", "position": event.position, "eta": event.eta_seconds}
    elif isinstance(event, Running):
        body = {"type": "running", "fraction": event.fraction, "eta": event.eta_seconds}
    elif isinstance(event, Decoded):
        body = {"type": "decoded", "duration": event.duration_seconds}
    else:
        return None
    return json.dumps({"job": job_id, "attempt": attempt, "event": body})


@dataclass(frozen=True)
class ProgressNote:
    """One message read from the progress channel."""

    job_id: str
    attempt: int
    event: ProgressEvent | None
    """None for an outcome notice (read the outcome from the ledger) or an unknown type."""
    outcome: bool = False


def read_progress_message(text: str) -> ProgressNote | None:
    """Parse a NOTIFY payload; None for anything malformed (logged by the caller)."""
    try:
        message = json.loads(text)
        job_id = checked_job_id(str(message["job"]))
        attempt = int(message.get("attempt", 0))
        body = message.get("event") or {}
        kind = body.get("type")
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    event: ProgressEvent | None = None
    if kind == "queued":
        event = Queued(position=int(body["position"]), eta_seconds=body.get("eta"))
    elif kind == "running":
        event = Running(fraction=float(body["fraction"]), eta_seconds=body.get("eta"))
    elif kind == "decoded":
        event = Decoded(duration_seconds=float(body["duration"]))
    return ProgressNote(job_id, attempt, event, outcome=kind == "outcome")


def outcome_notice(job_id: str, attempt: int) -> str:
    """The NOTIFY payload that says "this job's outcome is in the ledger"."""
    return json.dumps({"job": job_id, "attempt": attempt, "event": {"type": "outcome"}})


# -- the outcome ----------------------------------------------------------------------------
@dataclass(frozen=True)
class OutputFile:
    name: str
    """"instrumental", "vocals", or a source name in four-stem mode."""
    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ResultManifest:
    """A finished result in the shared cache; written after every file it lists."""

    cache_key: str
    outputs: list[OutputFile]
    """Instrumental first, as the local backend orders them."""
    duration_seconds: float
    bitrate_kbps: int | None
    input_tags: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    """When the result was stored (Unix time): results are users' music, kept and served
    for ``pool.cache_max_age_hours`` at most (``bot.distributed.retention``)."""
    stems: list[OutputFile] = field(default_factory=list)
    """The song's lossless stems (``separation.rendering.controls``) that renders re-mix;
    empty for a render, or a result from a worker of an older release."""
    stems_scale: float = 1.0
    """The shared scale the stems were stored at
    (``separation.rendering.controls.LosslessStems``)."""
    render_of: str | None = None
    """For a render: the song's cache key (renders are evicted before songs)."""
    tag_lyrics: str | None = None
    """The words in the song's tags (``JobResult.tag_lyrics``)."""
    lyrics_timing: str | None = None
    """A video's ``Timing`` value (``JobResult.lyrics_timing``)."""

    @property
    def stored_bytes(self) -> int:
        """What the result takes in the blob store (its manifest aside)."""
        return sum(item.size for item in [*self.outputs, *self.stems])

    def expired(self, now: float, max_age_seconds: float) -> bool:
        return now - self.created_at > max_age_seconds

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ResultManifest:
        """Raises ValueError for anything that is not a manifest we wrote."""
        try:
            raw = json.loads(data)
            outputs = [_output_file(o) for o in raw["outputs"]]
            timing = raw.get("lyrics_timing")
            manifest = cls(
                cache_key=str(raw["cache_key"]),
                outputs=outputs,
                duration_seconds=float(raw["duration_seconds"]),
                bitrate_kbps=None if raw.get("bitrate_kbps") is None else int(raw["bitrate_kbps"]),
                input_tags={str(k): str(v) for k, v in dict(raw.get("input_tags") or {}).items()},
                created_at=float(raw.get("created_at", 0.0)),
                stems=[_output_file(o) for o in raw.get("stems") or []],
                stems_scale=float(raw.get("stems_scale") or 1.0),
                render_of=None if raw.get("render_of") is None else str(raw["render_of"]),
                tag_lyrics=tag_lyrics_of(raw),
                lyrics_timing=None if timing is None else Timing(str(timing)).value,
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"not a result manifest: {exc}") from None
        prefix = result_prefix(manifest.cache_key)
        if manifest.render_of is not None:
            result_prefix(manifest.render_of)  # a cache key, or ValueError
        files = [*outputs, *manifest.stems]
        if not outputs or any(not o.key.startswith(prefix) for o in files):
            raise ValueError("a result manifest names files outside its own folder")
        return manifest


def _output_file(raw: Mapping[str, Any]) -> OutputFile:
    return OutputFile(str(raw["name"]), str(raw["key"]), int(raw["size"]), str(raw["sha256"]))


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended, as the worker recorded it in the ledger."""

    status: Literal["done", "failed", "cancelled"]
    cache_key: str | None = None
    cache_hit: bool = False
    error: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Outcome:
        status = raw.get("status")
        if status not in ("done", "failed", "cancelled"):
            raise ValueError(f"unknown outcome status {status!r}")
        return cls(
            status=status,
            cache_key=raw.get("cache_key"),
            cache_hit=bool(raw.get("cache_hit", False)),
            error=raw.get("error"),
        )


def error_to_dict(error: BaseException) -> dict[str, Any]:
    """A typed error as JSON: its class (when ours), message and keyword fields."""
    fields = {
        name: value
        for name, value in vars(error).items()
        if not name.startswith("_") and isinstance(value, str | int | float | bool | type(None))
    }
    ours = isinstance(error, _TYPED_ERRORS)
    name = type(error).__name__
    if isinstance(error, LyricsInputError) and not hasattr(separation_errors, name):
        name, fields = LyricsInputError.__name__, {}  # a parser's subclass: its sentence
    return {
        "type": name if ours else "JobFailedError",
        "message": str(error) if ours else f"{type(error).__name__}: {error}",
        "fields": fields if ours else {},
    }


def error_from_dict(raw: Mapping[str, Any]) -> Exception:
    """The typed error back (a generic ``JobFailedError`` when it cannot be rebuilt)."""
    message = str(raw.get("message", "the job failed on a worker"))
    cls = getattr(separation_errors, str(raw.get("type", "")), None)
    fields = dict(raw.get("fields") or {})
    if isinstance(cls, type) and issubclass(
        cls, AudioInputError | SeparationError | LyricsInputError
    ):
        error_class: Callable[..., Exception] = cls
        # Message-first constructors (the generic errors) take the text; the rest refuse
        # a positional argument and are rebuilt from their keyword fields.
        for args in ((message,), ()):
            try:
                return error_class(*args, **fields)
            except TypeError:
                continue
    return JobFailedError(message)
