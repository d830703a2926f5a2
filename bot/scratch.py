"""A directory for one process's temporary files (downloaded videos on their way to Discord).

A process killed mid-download cannot delete what it was writing, and a video can be as
large as the upload limit. So every process writes only inside a directory of its own,
next to a lock file it holds while it lives; at start, each process removes the
directories whose lock nobody holds any more (their process died), and at exit its own.
Locks are `flock`s, released by the kernel when a process dies, however it dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import shutil
from pathlib import Path
from types import TracebackType
from typing import Self

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".lock"


class ScratchDir:
    """`with ScratchDir(base) as scratch:` → `scratch.path`, this process's own directory."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.path = base / f"p{os.getpid()}-{secrets.token_hex(4)}"
        self._lock = self.path.with_name(self.path.name + LOCK_SUFFIX)
        self._fd: int | None = None

    def __enter__(self) -> Self:
        self.base.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self._lock, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.path.mkdir()
        removed = self.remove_orphans()
        if removed:
            log.info("removed %d leftover download folder(s) in %s", removed, self.base)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            self._lock.unlink()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def remove_orphans(self) -> int:
        """Remove the folders of processes that are gone; returns how many."""
        removed = 0
        for lock in self.base.glob("*" + LOCK_SUFFIX):
            if lock == self._lock:
                continue
            if not _is_orphan(lock):
                continue
            shutil.rmtree(lock.with_suffix(""), ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            removed += 1
        # Loose files from before folders were used (an older version wrote them here).
        for stray in self.base.glob("vidu-*"):
            if stray.is_file():
                stray.unlink(missing_ok=True)
                removed += 1
        return removed


def _is_orphan(lock: Path) -> bool:
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # its process is alive and holds it
    finally:
        os.close(fd)  # closing releases the lock we may have taken
    return True
