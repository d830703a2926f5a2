"""SQLite is the one-process store: the lock a bot process holds on its database file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage import StorageError, StoreInUseError, sqlite_process_lock
from storage.process_lock import lock_path

HOLD_AND_WAIT = """
import sys, time
from pathlib import Path
from storage import sqlite_process_lock
with sqlite_process_lock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_second_holder_is_refused_until_the_first_lets_go(db_path: Path) -> None:
    with sqlite_process_lock(db_path):
        assert lock_path(db_path).read_text().strip() == str(os.getpid())
        with pytest.raises(StoreInUseError) as caught, sqlite_process_lock(db_path):
            pass
        message = str(caught.value)
        assert "SQLite is the one-process store" in message and "DATABASE_URL" in message
        assert str(db_path) in message and f"pid {os.getpid()}" in message
        assert isinstance(caught.value, StorageError)  # so `python -m bot` exits 2
    with sqlite_process_lock(db_path):  # released at the end of the block
        pass


def test_the_lock_goes_with_the_process_that_held_it(db_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_WAIT, str(db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(StoreInUseError, match=f"pid {holder.pid}"),
            sqlite_process_lock(db_path),
        ):
            pass
    finally:
        holder.kill()  # no clean exit: the kernel still drops the lock
        holder.wait()
    with sqlite_process_lock(db_path):
        pass


def test_a_lock_file_that_cannot_be_made_is_an_error_unless_optional(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    inside_a_file = blocker / "bot.sqlite3"  # its folder cannot be created
    with (
        pytest.raises(StorageError, match="cannot create the lock file"),
        sqlite_process_lock(inside_a_file),
    ):
        pass
    with sqlite_process_lock(inside_a_file, must_create=False):
        pass
