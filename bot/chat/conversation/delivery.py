"""The files of a delivery: a finished song as the chat sends it, the first time and after
every re-render.

The first delivery (``bot.chat.conversation.flow``) and a re-render's
(``bot.chat.conversation.rerender``) send the same song, so one builder names the files,
fills in what the platforms show (title, performer, duration) and puts the karaoke
controls under the instrumental: a song and its re-renders always look alike. A karaoke
video (issue 24) is one more render of the song: it is sent as a video message, with
the same controls, each asking for a new video.
"""

from __future__ import annotations

from bot.chat.conversation import messages
from bot.chat.conversation.controls import Button, ControlState, buttons
from bot.chat.conversation.credits import song_credits
from bot.chat.conversation.types import OutgoingFile
from bot.chat.conversation.user_text import clean_name
from separation.jobs import INSTRUMENTAL, JobResult
from separation.video.request import VIDEO
from storage.records import JobRecord


def control_buttons(
    job: JobRecord,
    state: ControlState,
    output: str,
    *,
    available: bool,
    video_available: bool = False,
) -> list[list[Button]] | None:
    """The buttons to put under ``output`` of ``job``: the instrumental of a two-stem
    result (with "Lyrics video" when ``video_available``) or its video, and only when
    the backend can re-render (``available``)."""
    if not available or output not in (INSTRUMENTAL, VIDEO) or job.order.stems == "four":
        return None
    if job.control_token is None:  # a record made without the store: nothing to name
        return None
    return buttons(state, video_available=video_available)


def delivered_credits(
    job: JobRecord, result: JobResult, title: str | None, performer: str | None
) -> tuple[str, str | None]:
    """The title and artist a delivery names the song by: ``title`` (and ``performer``),
    or the song's tags and file name."""
    if title is None:
        title, performer = song_credits(result.input_tags, file_name=job.original_filename)
    # Cleaned again here, the one builder of sent files: whatever named the song, no
    # platform gets a name with invisible characters or of any length (issue 20).
    return clean_name(title) or messages.UNTITLED_SONG, clean_name(performer) or None


def outgoing_files(
    job: JobRecord,
    state: ControlState,
    result: JobResult,
    *,
    controls_available: bool,
    title: str | None = None,
    performer: str | None = None,
    video_size: tuple[int, int] | None = None,
) -> list[OutgoingFile]:
    """``result``'s files as the chat sends them: named after the song (``title``, or
    its tags and file name) and what ``state`` changed, with the instrumental's
    buttons when the backend can re-render (``controls_available``). ``video_size``:
    the width and height videos are made in, where the chat makes them (else no
    "Lyrics video" button)."""
    title, performer = delivered_credits(job, result, title, performer)
    files: list[OutgoingFile] = []
    for name, path in result.outputs.items():
        is_video = name == VIDEO
        # What was done to this file: the vocals of a guided render have no guide in them,
        # a video's sound track is the instrumental.
        sound = INSTRUMENTAL if is_video else name
        part = messages.VIDEO_PART if is_video else name
        shown = messages.result_title(title, part, state.options.title_suffix(sound))
        width, height = video_size if is_video and video_size else (None, None)
        controls = control_buttons(
            job, state, name, available=controls_available, video_available=video_size is not None
        )
        files.append(
            OutgoingFile(
                path=path,
                filename=shown + path.suffix,
                title=shown,
                performer=performer,
                duration_seconds=result.duration_seconds,
                controls=controls,
                is_video=is_video,
                width=width,
                height=height,
            )
        )
    return files
