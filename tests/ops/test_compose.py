"""docker/compose.yaml mirrors the tested fleet and every command in it is a real one."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.cli.main import build_parser
from bot.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"


def _services() -> dict[str, dict]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_the_compose_fleet_has_the_tested_topology():
    services = _services()
    assert {"postgres", "s3", "migrate", "worker", "telegram"} <= set(services)
    commands = {name: service.get("command") for name, service in services.items()}
    assert commands["migrate"] == ["db", "upgrade"]
    assert commands["worker"] == ["worker"]
    assert commands["telegram"] == ["run"]
    for name in ("migrate", "worker", "telegram"):
        build_parser().parse_args(commands[name])  # a real karaoke-bot command line


def test_the_fleet_config_is_distributed_on_s3_with_secrets_from_the_environment():
    services = _services()
    environment = dict(services["worker"]["environment"])
    resolved = {
        key: value.replace("${POSTGRES_PASSWORD:-karaoke}", "karaoke")
        .replace("${S3_ACCESS_KEY_ID:-karaoke}", "karaoke")
        .replace("${S3_SECRET_ACCESS_KEY:-karaoke-secret}", "karaoke-secret")
        for key, value in environment.items()
    }
    settings = load_settings(ROOT / "docker" / "fleet" / "config.toml", resolved)
    assert settings.backend.kind == "distributed" and settings.blobs.kind == "s3"
    assert settings.database_url.startswith("postgresql+asyncpg://karaoke:")
    assert settings.blobs.access_key_id is not None
    config_text = (ROOT / "docker" / "fleet" / "config.toml").read_text()
    assert "karaoke-secret" not in config_text and "[database]" not in config_text
