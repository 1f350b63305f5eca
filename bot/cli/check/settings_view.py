"""The effective settings as ``karaoke-bot check`` prints them, every secret masked:
values typed ``SecretStr``, fields named like a token, password or secret, and passwords
inside URLs."""

from __future__ import annotations

import json

from pydantic import BaseModel, SecretStr

from bot.ops.secrets import (
    MASK,
    is_secret_name,
    mask_url_password,
    plain_value,
)


def masked_settings_lines(settings: BaseModel) -> list[str]:
    """The settings as TOML-like lines, secrets replaced by ``********``."""
    lines: list[str] = []
    _describe_section(settings, (), lines)
    return lines[1:] if lines[:1] == [""] else lines


def _describe_section(model: BaseModel, path: tuple[str, ...], lines: list[str]) -> None:
    values, sections = [], []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            sections.append((name, value))
        else:
            values.append(f"{name} = {_show(name, value)}")
    if values:
        if path:
            lines.extend(["", f"[{'.'.join(path)}]"])
        lines.extend(values)
    for name, section in sections:
        _describe_section(section, (*path, name), lines)


def _show(name: str, value: object) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, SecretStr) or (isinstance(value, str) and is_secret_name(name)):
        return json.dumps(MASK) if plain_value(value) else '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_show(name, item) for item in value) + "]"
    return json.dumps(mask_url_password(str(value)))


# --- checks ---------------------------------------------------------------------------
