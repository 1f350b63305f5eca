"""The configuration reference in the docs is generated from the settings classes.

It cannot drift: the committed page must be what ``python -m bot.settings.reference``
writes today, every setting carries the docstring the page shows, and the example
config names only real settings (its commented-out keys included).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from bot.settings import Settings
from bot.settings.loading import ENV_OVERRIDES
from bot.settings.reference import COMMAND, REFERENCE_PATH, main, render_reference

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.toml"


def _leaf_settings(model: type[BaseModel], prefix: tuple[str, ...] = ()):
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _leaf_settings(annotation, (*prefix, name))
        else:
            yield (*prefix, name), field


def test_the_committed_reference_is_current():
    committed = (ROOT / REFERENCE_PATH).read_text(encoding="utf-8")
    assert committed == render_reference(), f"{REFERENCE_PATH} is stale: run `{COMMAND}`"


def test_the_reference_names_every_setting_with_its_default():
    page = render_reference()
    for path, _field in _leaf_settings(Settings):
        assert f"| `{'.'.join(path)}` |" in page, path
    assert "| `pool.cache_max_bytes` | integer | `5368709120` | ≥ 0 |" in page
    assert '| `model.precision` | string | `"auto"` | `"auto"`, `"fp32"`, `"bf16"`, `"fp16"` |' in (
        page
    )
    assert "Environment: `KARAOKE_TELEGRAM_TOKEN`." in page


def test_every_setting_says_what_it_is_for():
    """The page shows each field's docstring: a field without one would be a bare row."""
    missing = [".".join(path) for path, field in _leaf_settings(Settings) if not field.description]
    assert not missing, f"settings without a docstring: {missing}"


def test_check_mode_fails_on_a_stale_page_and_names_the_command(tmp_path, capsys):
    page = tmp_path / "configuration-reference.md"
    assert main(["--output", str(page)]) == 0
    assert main(["--check", "--output", str(page)]) == 0
    page.write_text(page.read_text(encoding="utf-8") + "edited by hand\n", encoding="utf-8")
    assert main(["--check", "--output", str(page)]) == 1
    assert COMMAND in capsys.readouterr().err


def test_every_key_in_the_example_config_is_a_real_setting():
    """Commented-out keys too: ``test_example_config_loads`` only sees the active ones."""
    known = {".".join(path) for path, _field in _leaf_settings(Settings)}
    table = ""
    shown = []
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        header = re.fullmatch(r"\[([a-z_.]+)\]", line.strip())
        if header:
            table = header.group(1)
        key = re.fullmatch(r"#? ?([a-z][a-z0-9_]*) = .*", line.strip())
        if key and table:
            shown.append(f"{table}.{key.group(1)}")
    assert set(shown) - known == set()
    assert known - set(shown) == set()


def test_the_configuration_page_lists_every_environment_override():
    page = (ROOT / REFERENCE_PATH).with_name("configuration.md").read_text(encoding="utf-8")
    for variable, (section, key) in ENV_OVERRIDES.items():
        assert f"| `{variable}` | `{section}.{key}`" in page, variable
