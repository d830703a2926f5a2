"""A client-side limit on requests per minute, shared by submissions and result reads.

Some Novita accounts allow only a few video requests per minute, and a 429 on a submission
delays a member's video, so the bot never sends more than the limit in any window.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class RateLimiter:
    """At most `per_minute` acquisitions in any sliding window of `period` seconds.

    A sliding window log (not a token bucket) because the service counts requests per
    minute: a bucket refilling continuously could still put more than the limit into one
    minute. Waiters are served in arrival order. `period` exists so tests can use a short
    window; the bot always uses 60 s.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        period: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        if period <= 0:
            raise ValueError("period must be positive")
        self.per_minute = per_minute
        self.period = period
        self._clock = clock
        self._stamps: collections.deque[float] = collections.deque()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until one more request fits in the window, then count it."""
        async with self._lock:  # FIFO: the longest waiter goes first
            while True:
                now = self._clock()
                while self._stamps and now - self._stamps[0] >= self.period:
                    self._stamps.popleft()
                wait = self._paused_until - now
                if wait <= 0 and len(self._stamps) < self.per_minute:
                    self._stamps.append(now)
                    return
                if wait <= 0:
                    wait = self._stamps[0] + self.period - now
                log.debug("rate limit: waiting %.2f s", wait)
                await asyncio.sleep(wait)

    def pause(self, seconds: float) -> None:
        """Hold every request back for `seconds` (the service said Retry-After)."""
        self._paused_until = max(self._paused_until, self._clock() + max(seconds, 0.0))

    @property
    def in_window(self) -> int:
        """How many requests the current window holds."""
        now = self._clock()
        return sum(1 for stamp in self._stamps if now - stamp < self.period)
