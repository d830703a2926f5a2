"""Fixtures for the simulator's own tests: a running simulator with short tasks, a receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.simulator import Simulator, SimulatorConfig
from tests.simulator.receiver import Receiver, webhook_receiver

# Fast enough for tests, slow enough that a poll sees the task in progress.
TASK_SECONDS = 0.5


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorConfig(task_seconds=TASK_SECONDS)) as simulator:
        yield simulator


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with webhook_receiver() as running:
        yield running
