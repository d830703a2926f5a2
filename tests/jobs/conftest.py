"""Fixtures for the job service: a real database file, a controllable clock, a fake API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from jobkit import Clock, FakeAPI, make_settings

from bot.jobs import JobService
from bot.settings import Settings
from storage import Database


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api() -> FakeAPI:
    return FakeAPI()


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "bot.sqlite3")
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def make_service(db: Database, api: FakeAPI, clock: Clock) -> Callable[..., JobService]:
    def build(**overrides: Any) -> JobService:
        return JobService(db, api, make_settings(**overrides), clock=clock)

    return build


@pytest.fixture
def service(db: Database, api: FakeAPI, settings: Settings, clock: Clock) -> JobService:
    return JobService(db, api, settings, clock=clock)
