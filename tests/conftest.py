"""Fixtures every layer's tests may use: a fresh database file per test, and the clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from storage import Database
from tests.shared import T0, Clock


@pytest.fixture
def t0() -> datetime:
    return T0


@pytest.fixture
def clock() -> Clock:
    return Clock()


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


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        choices=("small", "full"),
        default=None,
        help="tests/drills/test_soak.py: 'full' adds the 300-job soak to the small one that "
        "always runs (also VIDU_SOAK=full)",
    )
