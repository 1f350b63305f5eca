"""Private folders: per-job temporary folders, and sweeping the ones a dead process left.

A job folder holds a song's decoded samples and the model's accumulators: hundreds of
megabytes. It is removed on every exit path, but a process killed mid-job (SIGKILL, the
out-of-memory killer, a power loss) runs no exit path. So each folder carries its
owner's mark: an exclusive ``flock`` on ``.owner`` inside it, held for the folder's life.
The kernel drops the lock when the owner dies, however it dies, so
:func:`sweep_abandoned` can tell a leftover from a folder another live process (a
second bot, a ``separate`` run) is still using, without trusting pids or ages.

Folders are created 0700 whatever the umask: they hold users' music.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

JOB_PREFIX = "job-"
_OWNER = ".owner"
_UNMARKED_GRACE_SECONDS = 60.0


def private_dirs(path: Path) -> Path:
    """Create ``path`` and any missing parents with mode 0700 (the umask cannot widen or
    narrow it); folders that already exist are left as they are."""
    missing: list[Path] = []
    current = Path(os.path.abspath(path))
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue  # created meanwhile by another process
        os.chmod(folder, 0o700)
    return path


@contextmanager
def job_directory(root: Path, prefix: str = JOB_PREFIX) -> Iterator[Path]:
    """A fresh private folder below ``root``, owned (locked) and deleted when the block
    exits; if the process dies first, :func:`sweep_abandoned` removes it later."""
    folder = JobFolder.create(root, prefix)
    try:
        yield folder.path
    finally:
        folder.remove()


class JobFolder:
    """A job's private folder and the lock that marks it as in use."""

    def __init__(self, path: Path, owner_descriptor: int) -> None:
        self.path = path
        self._owner = owner_descriptor

    @classmethod
    def create(cls, root: Path, prefix: str = JOB_PREFIX) -> JobFolder:
        """A new folder, locked before a sweep can see it.

        Creating the owner file and locking it are two steps; a sweep in between would
        win the lock and remove a live job's folder. So the folder is made under a
        hidden name the lock rule ignores, locked, then renamed into view.
        """
        private_dirs(root)
        while True:
            hidden = Path(tempfile.mkdtemp(prefix=f".{prefix}", dir=root))  # mode 0700
            descriptor = os.open(hidden / _OWNER, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            path = root / hidden.name.removeprefix(".")
            try:
                os.rename(hidden, path)  # fails if a (non-empty) folder has that name
            except OSError:
                shutil.rmtree(hidden, ignore_errors=True)
                os.close(descriptor)
                continue
            return cls(path, descriptor)

    def remove(self) -> None:
        """Delete the folder, then give up ownership (in that order: a sweep never sees
        it unowned while it still exists)."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self._owner >= 0:
            os.close(self._owner)
            self._owner = -1


@dataclass(frozen=True)
class SweptFolder:
    path: Path
    size_bytes: int


def sweep_abandoned(root: Path, prefix: str = JOB_PREFIX) -> list[SweptFolder]:
    """Remove the job folders below ``root`` whose owner is gone; log each with its size.

    Safe at any time: a folder whose owner lock is held (by this or another live
    process) is left alone. A hidden folder is one being created (see
    :meth:`JobFolder.create`), and one without an owner file a leftover of a version that
    did not mark ownership: those go once they are older than a minute.
    """
    swept: list[SweptFolder] = []
    try:
        candidates = sorted([*root.glob(f"{prefix}*"), *root.glob(f".{prefix}*")])
    except OSError:
        return swept
    for folder in candidates:
        if not folder.is_dir() or folder.is_symlink():
            continue
        claimed = _claim_unmarked(folder) if folder.name.startswith(".") else _claim(folder)
        if claimed is None:
            continue  # a live owner
        try:
            size = _tree_size(folder)
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            if claimed >= 0:
                os.close(claimed)
        logger.warning("removed %s left by a process that died (%.1f MB)", folder, size / 1e6)
        swept.append(SweptFolder(folder, size))
    return swept


def _claim(folder: Path) -> int | None:
    """The owner lock of an abandoned folder (-1 if it has no owner file), else None."""
    try:
        descriptor = os.open(folder / _OWNER, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return _claim_unmarked(folder)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    if os.fstat(descriptor).st_nlink == 0:  # its owner removed the folder meanwhile
        os.close(descriptor)
        return None
    return descriptor


def _claim_unmarked(folder: Path) -> int | None:
    """-1 for a folder no owner can be asked about once it is older than a minute."""
    try:
        age = time.time() - folder.stat().st_mtime
    except FileNotFoundError:
        return None
    return -1 if age > _UNMARKED_GRACE_SECONDS else None


def _tree_size(folder: Path) -> int:
    total = 0
    for directory, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except OSError:
                continue
    return total
