"""Fixtures for storage tests: a fresh database file in a temporary directory per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage import Database

T0 = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)  # a Wednesday


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "bot.sqlite3"


@pytest.fixture
async def db(db_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(db_path)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def t0() -> datetime:
    return T0
