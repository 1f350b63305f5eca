"""The syntax of LRC's tags: ``[mm:ss.xx]`` line times, ``<mm:ss.xx>`` word times (the
enhanced "A2" extension) and ``[key:value]`` metadata, read and written in one place.

A time may be written ``[mm:ss]``, ``[mm:ss.x]``, ``[mm:ss.xx]``, ``[mm:ss.xxx]`` or
``[mm:ss:xx]`` (the digits after the second separator are a fraction of a second, as
every player reads them), with up to four digits of minutes; it is written back as
``mm:ss.xx``. A leading minus (``[-00:01.00]``, seen from some editors) reads as a
negative time, which the timeline clamps.
"""

from __future__ import annotations

import re

_TIME = r"\s*(-?)(\d{1,4}):(\d{1,2})(?:[.:](\d{1,3}))?\s*"
LINE_TAG = re.compile(r"\[" + _TIME + r"\]")
WORD_TAG = re.compile("<" + _TIME + ">")
ANY_TIME_TAG = re.compile(r"\[" + _TIME + r"\]|<" + _TIME + ">")
METADATA = re.compile(r"\[\s*([A-Za-z#][A-Za-z#_ ]{0,15}?)\s*:(.*)\]")
"""A whole line ``[ar:Artist]``, ``[offset:+500]``... (``fullmatch``)."""
BRACKETED = re.compile(r"\[[^\[\]]*\]")
"""A whole line in brackets: metadata, or a section header such as ``[Chorus]`` (``fullmatch``)."""
OFFSET = re.compile(r"\s*([+-]?\d{1,7})\s*")
"""The value of ``[offset:...]``: milliseconds, positive when the words come sooner."""


def seconds_of(match: re.Match[str], first_group: int = 1) -> float:
    """The time, in seconds, of a :data:`LINE_TAG` or :data:`WORD_TAG` match (or of the
    groups from ``first_group`` on, in :data:`ANY_TIME_TAG`)."""
    sign, minutes, seconds, fraction = match.group(
        first_group, first_group + 1, first_group + 2, first_group + 3
    )
    value = int(minutes) * 60 + int(seconds)
    if fraction:
        value += int(fraction) / 10 ** len(fraction)
    return -value if sign else value


def without_time_tags(text: str) -> str:
    """``text`` with every time tag taken out (never sung; a stray one would become a tag
    when the lyrics are written back as LRC)."""
    return ANY_TIME_TAG.sub("", text)


def stamp(seconds: float) -> str:
    """``seconds`` (≥ 0) as LRC writes a time: ``mm:ss.xx``, rounded to the hundredth."""
    minutes, hundredths = divmod(round(max(0.0, seconds) * 100), 6000)
    return f"{minutes:02d}:{hundredths // 100:02d}.{hundredths % 100:02d}"
