"""The files of a delivery: a finished song as the chat sends it, the first time and after
every re-render.

The first delivery (``bot.chat.conversation.flow``) and a re-render's
(``bot.chat.conversation.rerender``) send the same song, so one builder names the files,
fills in what the platforms show (title, performer, duration) and puts the karaoke
controls under the instrumental: a song and its re-renders always look alike.
"""

from __future__ import annotations

from bot.chat.conversation import messages
from bot.chat.conversation.controls import Button, ControlState, buttons
from bot.chat.conversation.credits import song_credits
from bot.chat.conversation.types import OutgoingFile
from bot.chat.conversation.user_text import clean_name
from separation.jobs import INSTRUMENTAL, JobResult
from storage.records import JobRecord


def control_buttons(
    job: JobRecord, state: ControlState, output: str, *, available: bool
) -> list[list[Button]] | None:
    """The buttons to put under ``output`` of ``job``: the instrumental of a two-stem
    result only, and only when the backend can re-render (``available``)."""
    if not available or output != INSTRUMENTAL or job.order.stems == "four":
        return None
    if job.control_token is None:  # a record made without the store: nothing to name
        return None
    return buttons(state)


def outgoing_files(
    job: JobRecord,
    state: ControlState,
    result: JobResult,
    *,
    controls_available: bool,
    title: str | None = None,
    performer: str | None = None,
) -> list[OutgoingFile]:
    """``result``'s files as the chat sends them: named after the song (``title``, or
    its tags and file name) and what ``state`` changed, with the instrumental's
    buttons when the backend can re-render (``controls_available``)."""
    if title is None:
        title, performer = song_credits(result.input_tags, file_name=job.original_filename)
    # Cleaned again here, the one builder of sent files: whatever named the song, no
    # platform gets a name with invisible characters or of any length (issue 20).
    title = clean_name(title) or messages.UNTITLED_SONG
    performer = clean_name(performer) or None
    files: list[OutgoingFile] = []
    for name, path in result.outputs.items():
        # What was done to this file: the vocals of a guided render have no guide in them.
        shown = messages.result_title(title, name, state.options.title_suffix(name))
        files.append(
            OutgoingFile(
                path=path,
                filename=shown + path.suffix,
                title=shown,
                performer=performer,
                duration_seconds=result.duration_seconds,
                controls=control_buttons(job, state, name, available=controls_available),
            )
        )
    return files
