"""The video's fonts: the packages' files, a fontconfig file naming only them, and an
operator's font put first."""

from __future__ import annotations

from pathlib import Path

import pytest

from separation.video.fonts import SHIPPED_FAMILY, font_family, prepare_fonts, shipped_fonts


def test_the_shipped_fonts_cover_the_scripts_by_family() -> None:
    families = [font_family(path) for path in shipped_fonts()]
    assert families == [SHIPPED_FAMILY, "Noto Sans CJK JP", "Noto Sans Arabic", "Heebo"]


def test_fontconfig_sees_only_the_render_s_fonts(tmp_path: Path) -> None:
    fonts = prepare_fonts(tmp_path)
    config = fonts.config.read_text()
    assert f"<dir>{fonts.directory}</dir>" in config
    assert config.count("<dir>") == 1  # no system folders, no include of the host's
    assert "<include" not in config
    linked = sorted(path.resolve() for path in fonts.directory.iterdir())
    assert linked == sorted(path.resolve() for path in shipped_fonts())
    assert fonts.environment() == {"FONTCONFIG_FILE": str(fonts.config)}


def test_an_operator_font_becomes_the_style_s_family(tmp_path: Path) -> None:
    heebo = shipped_fonts()[3]
    fonts = prepare_fonts(tmp_path, font=str(heebo))
    assert fonts.family == "Heebo"
    assert len(list(fonts.directory.iterdir())) == len(shipped_fonts()) + 1


def test_a_file_that_is_not_a_font_keeps_the_shipped_family(tmp_path: Path) -> None:
    junk = tmp_path / "junk.ttf"
    junk.write_bytes(b"\x00\x01\x00\x00" + b"\xff" * 64)
    assert font_family(junk) is None
    assert prepare_fonts(tmp_path / "render", font=str(junk)).family == SHIPPED_FAMILY


def test_the_fontconfig_file_names_absolute_folders_for_a_relative_workdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bot's default data folder is relative (./data): fontconfig reads a relative <dir>
    # against ffmpeg's working folder, so the fallback fonts (CJK, Hebrew) went missing.
    monkeypatch.chdir(tmp_path)
    fonts = prepare_fonts(Path("render"))
    config = fonts.config.read_text(encoding="utf-8")
    assert f"<dir>{tmp_path / 'render' / 'fonts'}</dir>" in config
    assert fonts.directory.is_absolute() and fonts.config.is_absolute()
