"""Fixtures for the operations tests: a clean environment."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No KARAOKE_* variable from the developer's shell, and the cwd in a temp folder."""
    for name in list(os.environ):
        if name.startswith("KARAOKE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch
