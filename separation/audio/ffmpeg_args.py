"""ffmpeg command lines: built with ffmpeg-python, run by our own code.

ffmpeg-python (``import ffmpeg``) describes a run as a graph (an input and its options,
the stream taken from it, an output and its options) and ``compile`` turns it into an
argument list. That list reads better than strings strung together by hand, and every
option is spelled one way: ``-name value``, each input's options before its ``-i``, each
output's options before its URL, global options after the outputs (ffmpeg applies a
global option wherever it stands) and ``-y`` last.

Only the building is ffmpeg-python's; our code starts the processes. Its ``run`` helpers
start a plain ``subprocess`` whose stdout and stderr are pipes or this process's own,
while our runs need what they cannot give: OS limits set through ``prlimit``, a deadline
kept with a pidfd, no stdin and output tails kept in temporary files for an upload
(``separation.audio.sandbox``); for an encoder, samples streamed into stdin block by block
while its stderr goes to a file, so a chatty ffmpeg never blocks on a full pipe nobody
reads (``separation.audio.encode``).

What ffmpeg-python cannot build stays hand-written, with the reason where it is: a run
without an output (``-decoders``: ``compile`` needs an output) and an option given more
than once (one ``-metadata`` per tag: its options are a dict).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeAlias

import ffmpeg as ffmpeg_python

Stream: TypeAlias = Any
"""A stream of an ffmpeg-python graph (the library has no type hints)."""


def file_url(path: Path) -> str:
    """``path`` as a URL of ffmpeg's ``file`` protocol.

    The prefix keeps a name such as ``-y`` or ``concat:x`` from being read as an option
    or as another protocol.
    """
    return f"file:{path}"


def input_stream(url: str, **options: str) -> Stream:
    """An input of a graph: ``options`` come out as ``-name value`` before ``-i url``."""
    return ffmpeg_python.input(url, **options)


def command_line(
    ffmpeg: str, output: Stream, *global_options: str, overwrite: bool = False
) -> list[str]:
    """The argument list that runs ``output``'s graph with the executable ``ffmpeg``.

    Args:
        ffmpeg: the ffmpeg executable (``find_ffmpeg()``), the first argument.
        output: an output stream (``stream.output(url, **options)``).
        global_options: options for ffmpeg as a whole (``-nostdin``, ``-loglevel``...).
        overwrite: add ``-y`` (replace an existing output file).
    """
    if global_options:
        output = output.global_args(*global_options)
    compiled = ffmpeg_python.compile(output, cmd=ffmpeg, overwrite_output=overwrite)
    return [str(argument) for argument in compiled]
