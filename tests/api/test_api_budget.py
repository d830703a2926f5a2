"""The client-side rate budget keeps to its rate (a short window keeps the test fast)."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.api import Budget, split_budgets


def most_in_any_window(stamps: list[float], window: float) -> int:
    return max(sum(1 for t in stamps if start <= t < start + window) for start in stamps)


async def test_holds_its_rate_over_a_burst() -> None:
    # 120 a minute, scaled down: 10 per 0.5 s (the same 1 per 50 ms on average).
    budget = Budget(10, period=0.5)
    stamps: list[float] = []

    async def one() -> None:
        await budget.acquire()
        stamps.append(time.monotonic())

    start = time.monotonic()
    await asyncio.gather(*(one() for _ in range(25)))
    elapsed = time.monotonic() - start

    assert most_in_any_window(stamps, 0.5) <= 10
    assert 1.0 <= elapsed < 2.0  # 10 now, 10 after 0.5 s, 5 after 1.0 s
    assert sum(1 for t in stamps if t - start < 0.25) == 10  # the first window goes at once


async def test_waiters_are_served_in_order() -> None:
    budget = Budget(1, period=0.05)
    order: list[int] = []

    async def one(n: int) -> None:
        await budget.acquire()
        order.append(n)

    tasks = []
    for n in range(5):
        tasks.append(asyncio.create_task(one(n)))
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]


async def test_a_429_holds_everyone_back_for_its_retry_after() -> None:
    budget = Budget(100, period=1.0)
    await budget.throttled(retry_after=0.2)
    assert await budget.available() == 0
    start = time.monotonic()
    await budget.acquire()
    assert time.monotonic() - start >= 0.19
    assert await budget.available() == 49  # half the rate, less the one just taken


async def test_a_cancelled_waiter_does_not_block_the_others() -> None:
    budget = Budget(1, period=0.2)
    await budget.acquire()
    waiter = asyncio.create_task(budget.acquire())
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    start = time.monotonic()
    await budget.acquire()
    assert time.monotonic() - start < 0.35  # the cancelled waiter took no slot (0.4 s)


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Budget(0)
    with pytest.raises(ValueError):
        Budget(5, period=0)


async def test_a_429_halves_the_rate_which_then_grows_back() -> None:
    now = [0.0]
    budget = Budget(60, clock=lambda: now[0])
    await budget.throttled(retry_after=3)
    now[0] = 1.0
    await budget.throttled(retry_after=3)  # a burst: requests sent before the first 429
    assert await budget.limit() == 30  # halved once (and 1 s of recovery: 30.5)
    now[0] = 3.5
    assert await budget.available() == 0  # paused until 4 s: the later Retry-After
    now[0] = 4.0
    assert await budget.available() == 32  # 30 + 4 s of recovery (60 a minute over 120 s)
    now[0] = 60.0
    assert await budget.limit() == 60  # back to the configured rate within two minutes
    await budget.throttled(None)  # no Retry-After: a short default pause
    assert await budget.available() == 0
    now[0] = 66.0
    assert await budget.available() > 0


def test_a_total_is_split_in_proportion() -> None:
    assert split_budgets(10, 60, None) == (10, 60)
    assert split_budgets(10, 60, 100) == (10, 60)  # fits: nothing to split
    assert split_budgets(10, 60, 35) == (5, 30)
    assert split_budgets(10, 60, 2) == (1, 1)  # each kind keeps at least one a minute
