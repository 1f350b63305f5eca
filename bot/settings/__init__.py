"""The one typed place for karaoke-bot's configuration.

Everything an operator can set lives here, loaded from a TOML file (see
``config.example.toml``) with environment overrides for secrets, so tokens never have
to be written to a file. Unknown keys are an error: a typo such as ``max_duraton`` must
not be silently ignored and leave the operator wondering why a limit does not apply.

One module per group of ``config.toml`` tables (``general``, ``audio``, ``model``,
``data``, ``chat``, ``fleet``), the whole in ``root``, reading the file in ``loading``,
and the documentation's configuration reference generated from these classes by
``reference``. Callers import from ``bot.settings`` only.

``separation/`` and ``storage/`` do not import this package; the application wiring
(``bot.process.app`` / ``bot.cli.main``) hands them the plain values they need.
"""

from bot.settings.audio import AudioSettings, OutputSettings
from bot.settings.base import ConfigError
from bot.settings.chat import DiscordSettings, RateLimitSettings, TelegramSettings
from bot.settings.data import (
    DatabaseSettings,
    QuotaLimitsSettings,
    QuotaSettings,
    StorageSettings,
)
from bot.settings.fleet import BackendSettings, BlobSettings, QueueSettings
from bot.settings.general import GeneralSettings, HealthSettings
from bot.settings.karaoke import LyricsSettings, VideoSettings
from bot.settings.loading import (
    describe_validation_error,
    load_settings,
    resolve_config_path,
    secret_value,
)
from bot.settings.model import ModelSettings, PoolSettings
from bot.settings.root import Settings

__all__ = [
    "AudioSettings",
    "BackendSettings",
    "BlobSettings",
    "ConfigError",
    "DatabaseSettings",
    "DiscordSettings",
    "GeneralSettings",
    "HealthSettings",
    "LyricsSettings",
    "ModelSettings",
    "OutputSettings",
    "PoolSettings",
    "QueueSettings",
    "QuotaLimitsSettings",
    "QuotaSettings",
    "RateLimitSettings",
    "Settings",
    "StorageSettings",
    "TelegramSettings",
    "VideoSettings",
    "describe_validation_error",
    "load_settings",
    "resolve_config_path",
    "secret_value",
]
