"""The fonts a karaoke video is drawn with: shipped in PyPI packages, never the host's.

No single free font package covers every script our users sing in, so the video uses a
small set, each from its own package (all SIL Open Font License 1.1):

* Noto Sans (``fontpkg-noto-sans``, 2 MB): Latin, Greek, Cyrillic, the style's font;
* Noto Sans CJK (``noto-cjk-sans-otc``, one 19 MB collection): Chinese, Japanese, Korean;
* Noto Sans Arabic (``fontpkg-noto-sans-arabic``, 0.8 MB): Arabic, shaped by HarfBuzz;
* Heebo (``fontpkg-heebo``, 0.1 MB): Hebrew (no Noto Sans Hebrew package exists).

libass draws a glyph the style's font lacks with a *fallback* font, and it asks
fontconfig for that fallback, never the fonts given as ``fontsdir`` (measured with
imageio-ffmpeg's ffmpeg 9: Arabic drew tofu boxes with only ``fontsdir``, and on a host
with DejaVu installed it silently drew DejaVu). So each render gets its own fontconfig
configuration that names our fonts folder only (:attr:`FontSet.config`, given to ffmpeg
as ``FONTCONFIG_FILE``): fallback then picks among our fonts, whatever the host has.

An operator's font (``VideoLook.font``) is put first: its family becomes the style's,
and the shipped fonts still cover the scripts it lacks.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from xml.sax.saxutils import escape

import fontpkg_heebo
import fontpkg_noto_sans
import fontpkg_noto_sans_arabic
import noto_cjk_sans_otc

logger = logging.getLogger(__name__)

SHIPPED_FAMILY = "Noto Sans"
"""The style's font when the operator names none (the first of :func:`shipped_fonts`)."""

_NAME_TABLE_LIMIT = 1 << 20
"""A font's ``name`` table is a few kilobytes; more is not a font we read."""


@dataclass(frozen=True)
class FontSet:
    """One render's fonts: a folder of them and a fontconfig file naming only it."""

    directory: Path
    config: Path
    """For ``FONTCONFIG_FILE``: fallback fonts come from ``directory`` only."""
    family: str
    """The family the ASS style names (the operator's font, or Noto Sans)."""

    def environment(self) -> dict[str, str]:
        """What the ffmpeg that renders needs in its environment."""
        return {"FONTCONFIG_FILE": str(self.config)}


def shipped_fonts() -> tuple[Path, ...]:
    """The font files of the packages this module names, the style's font first (found
    as the packages' data, where each package's wheel puts them)."""
    return tuple(
        Path(str(files(package).joinpath(*parts)))
        for package, parts in (
            (fontpkg_noto_sans, ("files", "NotoSans[wdth,wght].ttf")),
            (noto_cjk_sans_otc, ("NotoSansCJK-Regular.ttc",)),
            (fontpkg_noto_sans_arabic, ("files", "NotoSansArabic[wdth,wght].ttf")),
            (fontpkg_heebo, ("files", "Heebo[wght].ttf")),
        )
    )


def prepare_fonts(workdir: Path, *, font: str = "") -> FontSet:
    """Lay out the fonts of one render in ``workdir`` (links, not copies) and its
    fontconfig file.

    Args:
        workdir: the render's private folder.
        font: the operator's font file (``VideoLook.font``); empty: the shipped ones.
    """
    # Absolute paths in the fontconfig file: a relative <dir> is read against ffmpeg's
    # working folder, not the file's, and the bot's data folder (``./data``) is relative by
    # default. Measured: with a relative folder the CJK fallback drew missing-glyph boxes.
    workdir = workdir.resolve()
    directory = workdir / "fonts"
    directory.mkdir(parents=True, exist_ok=True)
    family = SHIPPED_FAMILY
    files = list(shipped_fonts())
    if font:
        operator = Path(font)
        operator_family = font_family(operator)
        if operator_family is None:
            logger.warning("cannot read a family name in %s; using %s", operator, family)
        else:
            family = operator_family
            files.insert(0, operator)
    for index, path in enumerate(files):
        # Our own names: a file name never matters to fontconfig, and cannot clash.
        link = directory / f"{index:02d}{path.suffix.lower()}"
        link.unlink(missing_ok=True)
        link.symlink_to(path.resolve())
    config = workdir / "fonts.conf"
    config.write_text(_fontconfig_xml(directory, workdir / "fontconfig-cache"), encoding="utf-8")
    return FontSet(directory=directory, config=config, family=family)


def _fontconfig_xml(directory: Path, cache: Path) -> str:
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        f"  <dir>{escape(str(directory))}</dir>\n"
        f"  <cachedir>{escape(str(cache))}</cachedir>\n"
        "</fontconfig>\n"
    )


def font_family(path: Path) -> str | None:
    """The family name (``name`` table, ID 1) libass matches a style's font against.

    libass reads the Windows-platform family names; the US English one is preferred.
    A TrueType collection gives its first font's. None: not an OpenType font.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(12)
            offset = 0
            if data[:4] == b"ttcf":
                handle.seek(12)
                (offset,) = struct.unpack(">I", handle.read(4))
                handle.seek(offset)
                data = handle.read(12)
            (tables,) = struct.unpack(">H", data[4:6])
            directory = handle.read(16 * tables)
            for entry in range(tables):
                tag, _, start, length = struct.unpack_from(">4sIII", directory, 16 * entry)
                if tag == b"name" and length <= _NAME_TABLE_LIMIT:
                    handle.seek(start)
                    return _family_from_name_table(handle.read(length))
    except (OSError, struct.error):
        return None
    return None


def _family_from_name_table(table: bytes) -> str | None:
    _, count, strings = struct.unpack_from(">HHH", table, 0)
    names: dict[int, str] = {}
    for record in range(count):
        platform, encoding, language, name_id, length, offset = struct.unpack_from(
            ">HHHHHH", table, 6 + 12 * record
        )
        if platform == 3 and encoding in (0, 1, 10) and name_id == 1:
            raw = table[strings + offset : strings + offset + length]
            names[language] = raw.decode("utf-16-be", errors="replace")
    if not names:
        return None
    return names.get(0x409) or next(iter(names.values()))
