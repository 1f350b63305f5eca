"""What a user may ask of a re-render: key, tempo, guide vocal; validated, without torch.

Kept apart from ``separation.rendering.controls`` (which renders, and imports the model's stem
types and with them torch) so that the command line and the chat flow can check a
user's values, name a cache entry and write a title before anything heavy is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from separation.errors import InvalidRenderOptionError

KEY_RANGE = (-6, 6)
TEMPO_RANGE = (0.5, 1.5)
GUIDE_DB_RANGE = (-30.0, -6.0)
_MINUS = "\N{MINUS SIGN}"
GUIDED_OUTPUT = "instrumental"
"""The one output a guide vocal is mixed into (``separation.jobs.INSTRUMENTAL``, spelled
out here because ``separation.jobs`` imports this module)."""


def _signed(value: float) -> str:
    """``+2``, ``−2`` (with a real minus sign), ``−7.5``: for titles people read."""
    return f"{value:+g}".replace("-", _MINUS)


@dataclass(frozen=True)
class RenderOptions:
    """What the user asked for; validated on construction, so an instance is always valid.

    Raises:
        InvalidRenderOptionError: an option is out of range (naming which one).
    """

    key: int = 0
    """Semitones, −6…+6; changes the pitch only (the tempo is kept)."""
    tempo: float = 1.0
    """Speed factor, 0.5…1.5 (0.8 plays 1.25 times as long); the pitch is kept. Rounded to
    two decimals: UIs send 0.05 steps, and the cache token must not depend on float noise."""
    guide_db: float | None = None
    """The vocals mixed into the instrumental at this level, −30…−6 dB; None: no guide.
    Rounded to 0.1 dB (inaudible) for the same reason."""

    def __post_init__(self) -> None:
        low, high = KEY_RANGE
        if (
            isinstance(self.key, bool)
            or not isinstance(self.key, int)
            or not low <= self.key <= high
        ):
            raise InvalidRenderOptionError(
                option="key",
                value=self.key,
                allowed=f"a whole number of semitones from {_signed(low)} to {_signed(high)}",
            )
        object.__setattr__(self, "tempo", round(_checked_number("tempo", self.tempo), 2))
        if self.guide_db is not None:
            object.__setattr__(self, "guide_db", round(_checked_number("guide", self.guide_db), 1))

    @property
    def is_identity(self) -> bool:
        """Nothing changes: the stored outputs are the answer."""
        return self.key == 0 and self.tempo == 1.0 and self.guide_db is None

    @property
    def reshapes(self) -> bool:
        """The key or the tempo changes (rubberband is needed)."""
        return self.key != 0 or self.tempo != 1.0

    @property
    def pitch_ratio(self) -> float:
        return float(2.0 ** (self.key / 12))

    def cache_token(self) -> str:
        """A short, stable, filename-safe string for cache keys: ``k-2_t0.90_g-12``."""
        if self.is_identity:
            return "identity"
        guide = "off" if self.guide_db is None else f"{self.guide_db:g}"
        return f"k{self.key}_t{self.tempo:.2f}_g{guide}"

    def title_suffix(self, output: str | None = None) -> str:
        """What was done to ``output``, for its title: ``−2 keys, 90%, guide vocal −12 dB``.

        Key and tempo change every output; the guide vocal is mixed into the instrumental
        only, so the vocals of a guided render are titled without it (issue 23: they were
        labelled with a guide they do not have). ``output`` None: the whole change, for a
        sentence about the render rather than a file's title. Empty for identity.
        """
        parts: list[str] = []
        if self.key:
            parts.append(f"{_signed(self.key)} {'key' if abs(self.key) == 1 else 'keys'}")
        if self.tempo != 1.0:
            parts.append(f"{round(self.tempo * 100)}%")
        if (guide := self._guide_in(output)) is not None:
            parts.append(f"guide vocal {_signed(guide)} dB")
        return ", ".join(parts)

    def file_suffix(self, output: str) -> str:
        """What was done to ``output``, for its file name: ``key -2, tempo 90%, guide -12 dB``
        (plain ASCII; the same rule as :meth:`title_suffix`). Empty for identity."""
        parts: list[str] = []
        if self.key:
            parts.append(f"key {self.key:+d}")
        if self.tempo != 1.0:
            parts.append(f"tempo {self.tempo * 100:.4g}%")
        if (guide := self._guide_in(output)) is not None:
            parts.append(f"guide {guide:g} dB")
        return ", ".join(parts)

    def _guide_in(self, output: str | None) -> float | None:
        """The guide vocal's level in ``output`` (None: anywhere in the render), or None
        when it has none."""
        return self.guide_db if output in (None, GUIDED_OUTPUT) else None


def _checked_number(option: str, value: float) -> float:
    """``value`` as a float, when it is a finite number within the option's range."""
    low, high, allowed = {
        "tempo": (*TEMPO_RANGE, f"a speed from {TEMPO_RANGE[0]:g} to {TEMPO_RANGE[1]:g}"),
        "guide": (*GUIDE_DB_RANGE, f"a level from {_signed(GUIDE_DB_RANGE[0])} dB "
                                   f"to {_signed(GUIDE_DB_RANGE[1])} dB, or off"),
    }[option]  # fmt: skip
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidRenderOptionError(option=option, value=value, allowed=allowed)
    return float(value)  # NaN never gets here: it fails every comparison
