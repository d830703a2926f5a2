"""Fixtures every layer's tests may use: a fresh database per test (SQLite and PostgreSQL),
and the clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from storage import Database
from tests.backends import BACKENDS, Backend, make_backend
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


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    """Every test that uses a database runs on both backends."""
    return str(request.param)


@pytest.fixture
async def backend(backend_name: str, tmp_path: Path) -> AsyncIterator[Backend]:
    """This test's own store: a SQLite file, or a PostgreSQL schema (see tests/backends.py)."""
    async with make_backend(backend_name, tmp_path) as place:
        yield place


@pytest.fixture
async def db(backend: Backend) -> AsyncIterator[Database]:
    database = await backend.open()
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
