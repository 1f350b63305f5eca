"""``separate --video``: the karaoke video of a song the pool has just separated.

The words come from, in order: the ``--lyrics`` file (the operator chose them; checked by
``bot.cli.video_prep`` before the model ran), the song's own tags (read by the pool when
it separated the song: ``JobResult.tag_lyrics``), then LRCLIB when ``lyrics.lrclib`` is on
(looked up by the song's artist, title, album and length). A note on stderr says which,
and says when the timing is approximate (untimed words timed on the vocals).

The video is a render of the separated song (``RenderRequest.video``), with the same key,
tempo and guide vocal as the audio files, so the pool makes it from the kept stems
without running the model again, on the same machine as any other render (the local pool
or a worker of the fleet). When no words are found, or the video cannot be made, the
audio files are still written: :class:`VideoNotMade` says why, and the command exits 1.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli import messages
from bot.cli.separate_prep import PlannedInput, output_file
from separation.errors import LyricsInputError, LyricsServiceError, SeparationError
from separation.lyrics.model import LyricsSource, Timing
from separation.lyrics.parse import clean_lyrics_text, parse_lyrics

if TYPE_CHECKING:
    from bot.cli.video_prep import VideoPlan
    from bot.settings.karaoke import LyricsSettings
    from separation.audio.render_options import RenderOptions
    from separation.jobs import JobResult, RenderingBackend, RenderRequest

logger = logging.getLogger(__name__)

VIDEO_OUTPUT_NAME = "karaoke"
"""``<stem> - karaoke.mp4`` beside ``<stem> - instrumental.mp3``."""
VIDEO_EXTENSION = "mp4"


class VideoNotMade(Exception):
    """A song's audio files are written and its video is not; ``str(self)`` says why,
    in one sentence for the operator."""


@dataclasses.dataclass(frozen=True)
class Words:
    """A song's words as the video request carries them, and where they came from."""

    text: str
    """Cleaned by ``separation.lyrics.parse``."""
    source: LyricsSource
    origin: str
    """Where from, in the operator's words (``from the song's own tags``)."""


async def karaoke_video(
    pool: RenderingBackend,
    separated: JobResult,
    item: PlannedInput,
    output_dir: Path,
    lyrics_settings: LyricsSettings,
    controls: RenderOptions,
    plan: VideoPlan,
) -> Path:
    """Write ``OUTDIR/<stem> - karaoke.mp4`` (named like the audio files: ``karaoke
    (key -2)``) of the song ``separated`` holds; returns its path.

    ``separated`` stays pinned by the caller until this returns: the video is rendered
    from its stems.

    Raises:
        VideoNotMade: no usable words, or the render failed (the audio is unaffected).
    """
    words = await find_words(separated, lyrics_settings, plan)
    messages.note(messages.words_from(item.path, words.origin))
    try:
        video = await pool.render(_video_request(separated, item, controls, plan, words))
    except LyricsInputError as exc:
        reason = messages.lyrics_problem(exc)  # the words refused where the video is made
        raise VideoNotMade(messages.unusable_lyrics(words.origin, reason)) from None
    except (SeparationError, OSError) as exc:
        logger.info("video of %s failed: %r %s", item.path, exc, getattr(exc, "stderr", ""))
        raise VideoNotMade(messages.video_not_rendered(exc)) from None
    try:
        if video.lyrics_timing is not None and Timing(video.lyrics_timing).is_approximate:
            messages.note(messages.approximate_timing(item.path))
        from separation.jobs import INSTRUMENTAL
        from separation.video.request import VIDEO

        # The sound track is the instrumental's: a guide vocal is named as in its name.
        target = output_file(
            output_dir, item.stem, VIDEO_OUTPUT_NAME, VIDEO_EXTENSION, controls, sound=INSTRUMENTAL
        )
        await asyncio.to_thread(shutil.copyfile, video.outputs[VIDEO], target)
    except OSError as exc:  # OUTDIR full, say: the audio files are there all the same
        raise VideoNotMade(messages.video_not_rendered(exc)) from None
    finally:
        video.release()
    return target


def _video_request(
    separated: JobResult,
    item: PlannedInput,
    controls: RenderOptions,
    plan: VideoPlan,
    words: Words,
) -> RenderRequest:
    from bot.chat.conversation.credits import song_credits  # names as the chats show them
    from separation.cpu_budget import Lane
    from separation.jobs import RenderRequest
    from separation.video.request import VideoRequest

    title, artist = song_credits(separated.input_tags, file_name=item.path.name)
    video = VideoRequest(
        lyrics_text=words.text,
        lyrics_source=words.source,
        title=title,
        artist=artist,
        look=plan.look,
        align=plan.align,
        speech_model=plan.speech_model,
    )
    # The video is what the operator is waiting for, like the audio: the first lane.
    return RenderRequest(separated.cache_key, controls, lane=Lane.FIRST_RESULT, video=video)


async def find_words(separated: JobResult, settings: LyricsSettings, plan: VideoPlan) -> Words:
    """The song's words: the ``--lyrics`` file, else its tags, else LRCLIB.

    Raises:
        VideoNotMade: none of them has usable words (the sentence says what each said,
            and to give ``--lyrics``).
    """
    if plan.lyrics_file is not None:
        origin = messages.lyrics_origin(LyricsSource.USER, plan.lyrics_file.path)
        return Words(plan.lyrics_file.text, LyricsSource.USER, origin)
    in_tags = _from_tags(separated, settings)
    if isinstance(in_tags, Words):
        return in_tags
    on_lrclib = await _from_lrclib(separated, settings)  # asked only when the tags fail
    if isinstance(on_lrclib, Words):
        return on_lrclib
    raise VideoNotMade(messages.no_lyrics([in_tags, on_lrclib]))


def _from_tags(separated: JobResult, settings: LyricsSettings) -> Words | str:
    """The words in the song's tags, or why there are none."""
    if not settings.from_tags:
        return messages.TAGS_OFF
    if not separated.tag_lyrics:
        return messages.TAGS_HAVE_NONE
    return _usable(separated.tag_lyrics, LyricsSource.TAGS, align=settings.alignment)


async def _from_lrclib(separated: JobResult, settings: LyricsSettings) -> Words | str:
    """The words LRCLIB has for the song (by its tags), or why there are none.

    Only ``lyrics.lrclib_url`` is asked, with its timeout and size cap; the answer is
    hostile text, cleaned and checked like a user's.
    """
    if not settings.lrclib:
        return messages.LRCLIB_OFF
    tags = separated.input_tags
    artist, title = tags.get("artist", "").strip(), tags.get("title", "").strip()
    if not artist or not title:
        return messages.LRCLIB_NO_NAMES

    # Here, not at the top: LRCLIB's client brings pydantic, and `separate --help` must
    # load no library (tests/cli/test_cli_imports.py).
    from separation.lyrics.lrclib import LrclibClient

    client = LrclibClient(
        str(settings.lrclib_url),
        timeout_seconds=settings.lrclib_timeout_seconds,
        max_bytes=settings.lrclib_max_bytes,
    )
    try:
        found = await client.find(
            artist=artist,
            title=title,
            album=tags.get("album", "").strip() or None,
            duration_seconds=separated.duration_seconds,
        )
    except LyricsServiceError as exc:
        return messages.lrclib_failed(str(exc))
    if found is None:
        return messages.LRCLIB_NOT_FOUND
    if found.instrumental:
        return messages.LRCLIB_INSTRUMENTAL

    try:  # the service's text is a stranger's, as a user's is (the tags' is clean already)
        text: str = clean_lyrics_text(found.text)
    except LyricsInputError as exc:
        origin = messages.lyrics_origin(LyricsSource.LRCLIB)
        return messages.unusable_lyrics(origin, messages.lyrics_problem(exc))
    return _usable(text, LyricsSource.LRCLIB, align=settings.alignment)


def _usable(text: str, source: LyricsSource, *, align: bool) -> Words | str:
    """``text`` (clean), when it parses into words a video can time; else why not."""

    origin = messages.lyrics_origin(source)
    try:
        lyrics = parse_lyrics(text, source=source)
    except LyricsInputError as exc:
        return messages.unusable_lyrics(origin, messages.lyrics_problem(exc))
    if not lyrics.is_timed and not align:
        return messages.unusable_lyrics(origin, messages.LYRICS_UNTIMED_WITHOUT_ALIGNMENT)
    return Words(text, source, origin)
