"""The karaoke subtitles: a :class:`~separation.video.layout.Screen` written as ASS with
pysubs2, for ffmpeg's libass to draw.

How the look is made:

* ``PlayResX/Y`` are the video's size, so every number here is a pixel of the frame.
* The font size is 10 % of the frame height: a line of text (capitals to descenders) is
  then 7 % of it, readable in a chat's preview on a phone (measured in the tests). A thick
  outline and a soft shadow keep the words readable on any cover art.
* ``\\kf`` fills a syllable from the style's *secondary* colour to its *primary* one, so
  the lyrics style has the fill colour as primary and the not-yet-sung colour as
  secondary (the other styles draw in their primary colour).
* Long lines wrap (``WrapStyle`` 0, libass's balanced wrapping): the upper slot is
  anchored at its bottom and grows upward, the lower one at its top and grows downward,
  so two wrapped lines never overlap.

Every piece of text (lyrics, title, artist) is a stranger's and goes through
:func:`escape_ass_text`, the one place that keeps it from being read as markup.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pysubs2

from separation.lyrics.model import Lyrics
from separation.video.layout import COUNTDOWN_BEATS, Screen, ShownLine, is_wide, plan_screen
from separation.video.request import VideoLook

FONT_SIZE_SHARE = 0.10
"""The lyrics' font size as a share of the frame height."""
UPPER_SLOT_BOTTOM = 0.60
LOWER_SLOT_TOP = 0.64
"""Where the two lyric slots meet, as shares of the frame height."""
SIDE_MARGIN_SHARE = 0.05
_WIDE_EM = 0.75
_NARROW_EM = 0.6
"""Estimated advances as shares of the ASS font size (measured: a Chinese character
0.71, a bold Latin letter 0.35-0.65)."""

_LITERALS = str.maketrans({"\\": "\uff3c", "{": "\uff5b", "}": "\uff5d"})
"""libass reads ``{`` as the start of an override block and ``\\`` as the start of an
escape (``\\N``, ``\\h``, and libass's own ``\\{``); no way of escaping them works in
every libass version, so they become their fullwidth lookalikes, which are plain text
everywhere (and are in the shipped CJK font)."""
_BREAKING = {"Cc", "Zl", "Zp"}
"""Control characters and line or paragraph separators: a newline would end the
``Dialogue:`` line in the file and start a line of the stranger's choosing."""


def escape_ass_text(text: str) -> str:
    """``text`` as ASS dialogue text that libass draws as it is, never as markup."""
    flat = "".join(" " if unicodedata.category(char) in _BREAKING else char for char in text)
    return flat.translate(_LITERALS)


def ass_colour(hex_colour: str, *, alpha: int = 0) -> pysubs2.Color:
    """``#rrggbb`` as a pysubs2 colour (written ``&HAABBGGRR``; alpha 0 is opaque)."""
    value = hex_colour.lstrip("#")
    return pysubs2.Color(int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16), alpha)


def write_karaoke_ass(
    lyrics: Lyrics,
    path: Path,
    *,
    look: VideoLook,
    title: str,
    artist: str | None,
    duration_seconds: float,
    font_family: str = "Noto Sans",
) -> Screen:
    """Write the karaoke subtitles of ``lyrics`` (already at the video's tempo) to ``path``.

    Args:
        lyrics: timed lyrics (``Timing.NONE`` must be aligned first).
        path: the ``.ass`` file to write.
        look: size and colours.
        title, artist: for the title card (a stranger's text, escaped here).
        duration_seconds: the song's length; lines past it are left out.
        font_family: the family the styles name (``separation.video.fonts``).

    Returns:
        The plan that was written (when each line shows), for callers and tests.

    Raises:
        ValueError: the lyrics have no times.
    """
    screen = plan_screen(lyrics, duration_seconds=duration_seconds)
    subs = pysubs2.SSAFile()
    subs.info.update(
        {
            "Title": "karaoke",
            "PlayResX": str(look.width),
            "PlayResY": str(look.height),
            "WrapStyle": "0",
            "ScaledBorderAndShadow": "yes",
            "YCbCr Matrix": "TV.601",
        }
    )
    subs.styles = _styles(look, font_family)
    if screen.title is not None:
        subs.events.extend(_title_card(look, screen.title, title, artist))
    for end in screen.countdowns:
        subs.events.extend(_countdown(look, end))
    subs.events.extend(_lyric_event(look, line) for line in screen.lines)
    subs.save(str(path), format_="ass", encoding="utf-8")
    return screen


def font_size(look: VideoLook) -> int:
    return round(look.height * FONT_SIZE_SHARE)


def _styles(look: VideoLook, family: str) -> dict[str, pysubs2.SSAStyle]:
    size = font_size(look)
    margin = round(look.width * SIDE_MARGIN_SHARE)

    def style(primary: str, secondary: str, scale: float, *, bold: bool) -> pysubs2.SSAStyle:
        return pysubs2.SSAStyle(
            fontname=family,
            fontsize=round(size * scale),
            primarycolor=ass_colour(primary),
            secondarycolor=ass_colour(secondary),
            outlinecolor=pysubs2.Color(0, 0, 0, 0),
            backcolor=pysubs2.Color(0, 0, 0, 0x80),
            bold=bold,
            outline=max(2.0, round(size * 0.08, 1)),
            shadow=max(1.0, round(size * 0.05, 1)),
            alignment=pysubs2.Alignment.BOTTOM_CENTER,
            marginl=margin,
            marginr=margin,
            marginv=margin,
            # -1: libass finds each line's base direction, so a Hebrew or Arabic line
            # reads from the right (1, the usual value, lays its words out left to right).
            encoding=-1,
        )

    return {
        # \kf fills from secondary (not sung yet) to primary (sung).
        "Lyrics": style(look.fill_colour, look.text_colour, 1.0, bold=True),
        "Title": style(look.text_colour, look.text_colour, 1.25, bold=True),
        "Artist": style(look.text_colour, look.text_colour, 0.85, bold=False),
        "Countdown": style(look.fill_colour, look.fill_colour, 1.2, bold=True),
    }


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _title_card(
    look: VideoLook, shown: tuple[float, float], title: str, artist: str | None
) -> list[pysubs2.SSAEvent]:
    centre, middle = look.width // 2, round(look.height * 0.45)
    start, end = _ms(shown[0]), _ms(shown[1])
    fade = r"\fad(0,300)"
    events = [
        pysubs2.SSAEvent(
            start=start, end=end, style="Title",
            text=f"{{\\an2\\pos({centre},{middle}){fade}}}{escape_ass_text(title)}",
        )
    ]  # fmt: skip
    if artist:
        below = middle + round(font_size(look) * 0.4)
        events.append(
            pysubs2.SSAEvent(
                start=start, end=end, style="Artist",
                text=f"{{\\an8\\pos({centre},{below}){fade}}}{escape_ass_text(artist)}",
            )
        )  # fmt: skip
    return events


def _countdown(look: VideoLook, end: float) -> list[pysubs2.SSAEvent]:
    """Three dots above the lyrics, one going each beat: ● ● ●, ● ●, ●."""
    centre, top = look.width // 2, round(look.height * 0.22)
    return [
        pysubs2.SSAEvent(
            start=_ms(end - beats), end=_ms(end - beats + 1), style="Countdown",
            text=f"{{\\an5\\pos({centre},{top})}}" + " ".join(["\u25cf"] * beats),
        )
        for beats in range(COUNTDOWN_BEATS, 0, -1)
        if end - beats >= 0
    ]  # fmt: skip


def _lyric_event(look: VideoLook, line: ShownLine) -> pysubs2.SSAEvent:
    centre = look.width // 2
    if line.slot == 0:
        anchor, y = 2, round(look.height * UPPER_SLOT_BOTTOM)
    else:
        anchor, y = 8, round(look.height * LOWER_SLOT_TOP)
    row_width = look.width * (1 - 2 * SIDE_MARGIN_SHARE)
    text = f"{{\\an{anchor}\\pos({centre},{y})\\fad(150,200)}}" + _karaoke_text(
        line, font_px=font_size(look), row_width=row_width
    )
    return pysubs2.SSAEvent(start=_ms(line.show), end=_ms(line.hide), style="Lyrics", text=text)


def _karaoke_text(line: ShownLine, *, font_px: int, row_width: float) -> str:
    """The words with their ``\\k``/``\\kf`` durations (centiseconds from the line's
    appearance, rounded at each boundary so the errors never add up). A pause before a
    word is an empty ``\\k`` syllable."""

    def at(seconds: float) -> int:
        return max(0, round((seconds - line.show) * 100))

    rows = _RowBreaker(font_px, row_width)
    parts: list[str] = []
    cursor = 0
    for word in line.words:
        start, end = at(word.start), at(word.end)
        if start > cursor:
            parts.append(f"{{\\k{start - cursor}}}")
            cursor = start
        parts.append(f"{{\\kf{max(end - cursor, 0)}}}{rows.broken(escape_ass_text(word.text))}")
        cursor = max(cursor, end)
    return "".join(parts)


class _RowBreaker:
    """Hard row breaks (``\\N``) inside runs written without spaces.

    libass wraps only at spaces (this build has no Unicode line breaking), so a line of
    Chinese, or a stranger's 200-letter word, would run off the screen. Widths are
    estimated from the font size (a full em for Chinese and Japanese characters, a
    generous 0.6 em otherwise), so a break comes a little early rather than too late.
    Runs with spaces are left to libass's own wrapping.
    """

    def __init__(self, font_px: int, row_width: float) -> None:
        self.size = font_px
        self.row_width = row_width
        self.run = 0.0
        """The estimated width of the run since the last space or break."""

    def broken(self, text: str) -> str:
        out: list[str] = []
        for char in text:
            if char == " ":
                self.run = 0.0
            else:
                width = self.size * (_WIDE_EM if is_wide(char) else _NARROW_EM)
                if self.run + width > self.row_width and self.run > 0:
                    out.append("\\N")  # ours, after escaping: the text holds no backslash
                    self.run = 0.0
                self.run += width
            out.append(char)
        return "".join(out)
