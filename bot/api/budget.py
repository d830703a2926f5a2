"""Client-side budgets for the video API: one for submissions, one for result reads.

Some Novita accounts allow only a few video requests a minute, so the bot never sends more
than its budget in any minute. Submissions and reads have budgets of their own: ten
submissions must not hold every read back for a minute, and a busy poller must not make a
member's "on its way" wait. A 429 slows only the budget whose request got it: that budget
pauses for the Retry-After, halves its rate, and earns the rate back over two minutes.

Each budget is a sliding window log (not a token bucket), because the service counts
requests per minute: a bucket refilling continuously could still put more than the limit
into one minute. Waiters are served in arrival order. `period` exists so tests can use a
short window; the bot always uses 60 s.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

# After a 429 the rate is halved, then grows back to the configured one over this time.
RECOVERY_SECONDS = 120.0
# A 429 without Retry-After pauses the budget this long.
DEFAULT_PAUSE = 5.0


class Budget:
    """At most `per_minute` acquisitions in any sliding window of `period` seconds."""

    def __init__(
        self,
        per_minute: int,
        *,
        name: str = "requests",
        period: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        if period <= 0:
            raise ValueError("period must be positive")
        self.name = name
        self.per_minute = per_minute
        self.period = period
        self._clock = clock
        self._stamps: collections.deque[float] = collections.deque()
        self._paused_until = 0.0
        self._slowed_at: float | None = None  # when a 429 last halved the rate
        self._slowed_to = float(per_minute)
        self._lock = asyncio.Lock()

    # --- the rate ------------------------------------------------------------------------

    @property
    def limit(self) -> int:
        """How many requests the window allows now (less than `per_minute` after a 429)."""
        if self._slowed_at is None:
            return self.per_minute
        recovered = (self._clock() - self._slowed_at) / RECOVERY_SECONDS * self.per_minute
        limit = min(float(self.per_minute), self._slowed_to + recovered)
        if limit >= self.per_minute:
            self._slowed_at = None
        return max(1, math.floor(limit))

    def throttled(self, retry_after: float | None) -> None:
        """The service answered 429 to a request of this budget: pause and slow down."""
        now = self._clock()
        self._slowed_to = max(1.0, self.limit / 2)
        self._slowed_at = now
        self.pause(DEFAULT_PAUSE if retry_after is None else retry_after)
        log.warning(
            "video API: 429 on %s; pausing %.0f s, then %d a minute, recovering",
            self.name,
            self._paused_until - now,
            self.limit,
        )

    def pause(self, seconds: float) -> None:
        """Hold every request of this budget back for `seconds`."""
        self._paused_until = max(self._paused_until, self._clock() + max(seconds, 0.0))

    # --- taking from it ------------------------------------------------------------------

    def _trim(self, now: float) -> None:
        while self._stamps and now - self._stamps[0] >= self.period:
            self._stamps.popleft()

    def available(self) -> int:
        """How many requests could go right now without waiting (for callers that choose
        what to send first when the budget is short)."""
        now = self._clock()
        if now < self._paused_until or self._lock.locked():
            return 0
        self._trim(now)
        return max(0, self.limit - len(self._stamps))

    async def acquire(self) -> None:
        """Wait until one more request fits in the window, then count it."""
        async with self._lock:  # FIFO: the longest waiter goes first
            while True:
                now = self._clock()
                self._trim(now)
                wait = self._paused_until - now
                if wait <= 0 and len(self._stamps) < self.limit:
                    self._stamps.append(now)
                    return
                if wait <= 0:
                    excess = len(self._stamps) - self.limit
                    wait = self._stamps[excess] + self.period - now
                log.debug("%s budget: waiting %.2f s", self.name, wait)
                await asyncio.sleep(max(wait, 0.001))

    @property
    def in_window(self) -> int:
        """How many requests the current window holds."""
        now = self._clock()
        return sum(1 for stamp in self._stamps if now - stamp < self.period)


def split_budgets(
    submits_per_minute: int, reads_per_minute: int, total_per_minute: int | None
) -> tuple[int, int]:
    """The two budgets' rates; with a total, scaled down in proportion to fit in it, so
    neither kind of request ever waits for the other."""
    if total_per_minute is None or submits_per_minute + reads_per_minute <= total_per_minute:
        return submits_per_minute, reads_per_minute
    share = total_per_minute / (submits_per_minute + reads_per_minute)
    submits = max(1, math.floor(submits_per_minute * share))
    reads = max(1, total_per_minute - submits)
    return submits, reads
