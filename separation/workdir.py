"""Per-job temporary folders: private, and removed on every exit path."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def job_directory(root: Path, prefix: str = "job-") -> Iterator[Path]:
    """A fresh folder below ``root`` with mode 0700, deleted when the block exits."""
    root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=root))  # mkdtemp creates it 0700
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
