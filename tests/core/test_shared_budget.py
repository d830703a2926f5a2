"""The video API's budgets shared through the database: two processes (two pools on one
database) together keep to one rate, and a 429 seen by one slows the other."""

from __future__ import annotations

import asyncio
import time

from bot.api import Budget
from bot.core.shared_budget import DatabaseWindow
from tests.backends import Backend


def most_in_any_window(stamps: list[float], window: float) -> int:
    return max(sum(1 for t in stamps if start <= t < start + window) for start in stamps)


async def two_processes(backend: Backend, per_minute: int, period: float) -> list[Budget]:
    return [
        Budget(per_minute, name="reads", period=period, window=DatabaseWindow(await backend.open()))
        for _ in range(2)
    ]


async def test_two_processes_together_keep_to_one_rate(backend: Backend) -> None:
    budgets = await two_processes(backend, 6, period=0.6)
    stamps: list[float] = []

    async def one(budget: Budget) -> None:
        await budget.acquire()
        stamps.append(time.monotonic())

    start = time.monotonic()
    await asyncio.gather(*(one(budgets[n % 2]) for n in range(15)))
    elapsed = time.monotonic() - start
    # Allow a little for the database clock and this one disagreeing by a hair.
    assert most_in_any_window(stamps, 0.55) <= 6
    assert elapsed >= 1.15  # 6 now, 6 after 0.6 s, 3 after 1.2 s: not 15 at once
    assert sum(1 for t in stamps if t - start < 0.3) == 6  # the first window went at once


async def test_a_429_seen_by_one_process_slows_the_other(backend: Backend) -> None:
    first, second = await two_processes(backend, 60, period=60.0)
    assert await second.available() == 60
    await first.throttled(retry_after=0.3)
    await second.throttled(retry_after=0.3)  # the same burst, seen by the other process
    assert await second.limit() == 30  # halved once, not twice
    assert await second.available() == 0  # paused for the Retry-After, everywhere
    start = time.monotonic()
    await second.acquire()
    assert time.monotonic() - start >= 0.25
    assert await first.available() == 29  # the halved rate, less the one just taken
