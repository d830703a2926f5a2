"""SQLite is the one-process store: a bot process holds an exclusive lock on its database
file for as long as it runs, so a second process on the same file stops at start instead of
racing the first for the last credits.

The lock is an advisory `flock` on `<database>.lock` beside the file (never on the database
itself, which SQLite locks in its own way). The kernel drops it when the process ends, even
by a crash, so a stale lock cannot keep the bot down.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from storage.database import StorageError


class StoreInUseError(StorageError):
    """Another process holds the SQLite file."""


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


@contextlib.contextmanager
def sqlite_process_lock(database: Path, *, must_create: bool = True) -> Iterator[None]:
    """Hold the one-process lock of the SQLite file `database` inside the block.

    Raises `StoreInUseError` when another process holds it. With `must_create` False a
    lock file that cannot be created (a read-only folder) is not an error: the block runs
    without the lock (for tools that only read the file).
    """
    path = lock_path(database)
    try:
        if must_create:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        if must_create:
            raise StorageError(f"cannot create the lock file {path}: {error}") from error
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            raise StoreInUseError(
                f"another process{holder} is using the SQLite database {database}. SQLite is "
                "the one-process store: stop that process, or set DATABASE_URL to a "
                "PostgreSQL database to run more than one (README: Running more than one "
                "process)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""
