"""The client-side rate limiter keeps to its rate (a short window keeps the test fast)."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.api import RateLimiter


def most_in_any_window(stamps: list[float], window: float) -> int:
    return max(sum(1 for t in stamps if start <= t < start + window) for start in stamps)


async def test_holds_its_rate_over_a_burst() -> None:
    # 120 a minute, scaled down: 10 per 0.5 s (the same 1 per 50 ms on average).
    limiter = RateLimiter(10, period=0.5)
    stamps: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        stamps.append(time.monotonic())

    start = time.monotonic()
    await asyncio.gather(*(one() for _ in range(25)))
    elapsed = time.monotonic() - start

    assert most_in_any_window(stamps, 0.5) <= 10
    assert 1.0 <= elapsed < 2.0  # 10 now, 10 after 0.5 s, 5 after 1.0 s
    assert sum(1 for t in stamps if t - start < 0.25) == 10  # the first window goes at once


async def test_waiters_are_served_in_order() -> None:
    limiter = RateLimiter(1, period=0.05)
    order: list[int] = []

    async def one(n: int) -> None:
        await limiter.acquire()
        order.append(n)

    tasks = []
    for n in range(5):
        tasks.append(asyncio.create_task(one(n)))
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]


async def test_pause_holds_everyone_back() -> None:
    limiter = RateLimiter(100, period=1.0)
    limiter.pause(0.2)
    start = time.monotonic()
    await limiter.acquire()
    assert time.monotonic() - start >= 0.19
    assert limiter.in_window == 1


async def test_a_cancelled_waiter_does_not_block_the_others() -> None:
    limiter = RateLimiter(1, period=0.2)
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    start = time.monotonic()
    await limiter.acquire()
    assert time.monotonic() - start < 0.35  # the cancelled waiter took no slot (0.4 s)


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)
    with pytest.raises(ValueError):
        RateLimiter(5, period=0)
