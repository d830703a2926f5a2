"""What tests of every layer share: a fixed moment, and a clock the test moves by hand."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

T = TypeVar("T")

T0 = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)  # a Wednesday, ISO week 10


class Clock:
    """A clock the test moves by hand; pass it wherever the code takes `clock=`."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def eventually(probe: Callable[[], Awaitable[T]], *, limit: float = 5.0) -> T:
    """The first truthy answer of `probe`, asked every 20 ms; TimeoutError after `limit` s."""
    async with asyncio.timeout(limit):
        while True:
            answer = await probe()
            if answer:
                return answer
            await asyncio.sleep(0.02)
