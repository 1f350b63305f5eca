"""What every settings section shares: the error type and strictness.

Kept apart from the sections so each section module, the loader and the reference
generator can import it without importing one another.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or invalid."""


class Section(BaseModel):
    """A table of ``config.toml``.

    Unknown keys are an error (a typo must not silently leave a limit unset), and each
    field's docstring becomes its description, which the generated configuration
    reference (``bot.settings.reference``) prints.
    """

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, use_attribute_docstrings=True
    )
