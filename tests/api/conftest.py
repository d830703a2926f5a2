"""Fixtures for the video API tests: the loopback simulator and a client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bot.api import Budget, VideoAPI
from bot.simulator import Simulator, SimulatorConfig

# Fast enough for tests, slow enough that a poll sees the task in progress.
TASK_SECONDS = 0.5
RETRY_BASE = 0.01


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorConfig(task_seconds=TASK_SECONDS)) as simulator:
        yield simulator


@pytest.fixture
def make_api(sim: Simulator) -> Callable[..., VideoAPI]:
    """Build clients against the simulator; closed by the `api` fixture's owner."""

    def make(**overrides: Any) -> VideoAPI:
        options: dict[str, Any] = {
            "submits": Budget(6000),
            "reads": Budget(6000),
            "submit_timeout": 2.0,
            "request_timeout": 2.0,
            "retry_base_delay": RETRY_BASE,
        }
        options.update(overrides)
        base_url = options.pop("base_url", sim.base_url)
        api_key = options.pop("api_key", sim.api_key)
        return VideoAPI(base_url, api_key, **options)

    return make


@pytest.fixture
async def api(make_api: Callable[..., VideoAPI]) -> AsyncIterator[VideoAPI]:
    async with make_api() as client:
        yield client
