"""Fixtures for the core: a real database file (root conftest), the clock, a fake API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from jobkit import FakeAPI, make_settings

from bot.core import Core
from bot.settings import Settings
from storage import Database
from tests.shared import Clock


@pytest.fixture
def api() -> FakeAPI:
    return FakeAPI()


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def make_core(db: Database, api: FakeAPI, clock: Clock) -> Callable[..., Core]:
    def build(**overrides: Any) -> Core:
        return Core.build(db, api, make_settings(**overrides), clock=clock)

    return build


@pytest.fixture
def core(db: Database, api: FakeAPI, settings: Settings, clock: Clock) -> Core:
    return Core.build(db, api, settings, clock=clock)
