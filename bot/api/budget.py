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

The limits are per API key, so processes sharing a key share the budgets: the window (the
last minute's requests, and each budget's pause and slow-down) lives in this process's
memory by default (`MemoryWindow`), or in PostgreSQL for many processes
(`bot.core.shared_budget.DatabaseWindow`); the arithmetic is the same (`Pace`,
`wait_for_room`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

log = logging.getLogger(__name__)

# After a 429 the rate is halved, then grows back to the configured one over this time.
RECOVERY_SECONDS = 120.0
# A 429 without Retry-After pauses the budget this long.
DEFAULT_PAUSE = 5.0


@dataclass(frozen=True, slots=True)
class Pace:
    """A budget's pause and slow-down after a 429 (times in its window's clock)."""

    paused_until: float = 0.0
    slowed_at: float | None = None  # when a 429 last halved the rate
    slowed_to: float = 0.0  # the rate it was halved to

    def limit(self, per_minute: int, now: float) -> int:
        """How many requests the window allows at `now` (less than `per_minute` for two
        minutes after a 429)."""
        if self.slowed_at is None:
            return per_minute
        recovered = (now - self.slowed_at) / RECOVERY_SECONDS * per_minute
        return max(1, math.floor(min(float(per_minute), self.slowed_to + recovered)))

    def after_429(self, per_minute: int, now: float, pause: float) -> Pace:
        """The pace after a 429 at `now`: paused for `pause` s, at half the rate. The 429s
        of requests already under way when the pause began (a burst) only lengthen it:
        they say nothing new about the rate, and each halving again would starve it."""
        paused_until = max(self.paused_until, now + max(pause, 0.0))
        if now < self.paused_until:
            return replace(self, paused_until=paused_until)
        return Pace(
            paused_until=paused_until,
            slowed_at=now,
            slowed_to=max(1.0, self.limit(per_minute, now) / 2),
        )


def wait_for_room(
    stamps: Sequence[float], pace: Pace, per_minute: int, period: float, now: float
) -> float:
    """How long until one more request fits, given the window's `stamps` (oldest first,
    all within `period` of `now`): 0 when it fits now."""
    if now < pace.paused_until:
        return pace.paused_until - now
    limit = pace.limit(per_minute, now)
    if len(stamps) < limit:
        return 0.0
    return stamps[len(stamps) - limit] + period - now


class Window(Protocol):
    """Where budgets keep their last window of requests and their pace: in this process
    (`MemoryWindow`), or in the database every process of a deployment shares."""

    async def take(self, name: str, per_minute: int, period: float) -> float:
        """Count one request of budget `name` if it fits now and return 0; else return how
        long to wait before asking again (nothing counted)."""
        ...

    async def room(self, name: str, per_minute: int, period: float) -> int:
        """How many requests of `name` could go now without waiting."""
        ...

    async def slow(self, name: str, per_minute: int, pause: float) -> int:
        """A 429 came for `name`: pause it and halve its rate; returns the new rate."""
        ...

    async def limit(self, name: str, per_minute: int) -> int:
        """How many requests of `name` a window allows now."""
        ...


class MemoryWindow:
    """The budgets of one process, in memory (sliding window logs)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._stamps: dict[str, collections.deque[float]] = {}
        self._paces: dict[str, Pace] = {}

    def _window(self, name: str, period: float, now: float) -> collections.deque[float]:
        stamps = self._stamps.setdefault(name, collections.deque())
        while stamps and now - stamps[0] >= period:
            stamps.popleft()
        return stamps

    def pace(self, name: str) -> Pace:
        return self._paces.get(name, Pace())

    async def take(self, name: str, per_minute: int, period: float) -> float:
        now = self._clock()
        stamps = self._window(name, period, now)
        wait = wait_for_room(stamps, self.pace(name), per_minute, period, now)
        if wait <= 0:
            stamps.append(now)
        return wait

    async def room(self, name: str, per_minute: int, period: float) -> int:
        now = self._clock()
        pace = self.pace(name)
        if now < pace.paused_until:
            return 0
        return max(0, pace.limit(per_minute, now) - len(self._window(name, period, now)))

    async def slow(self, name: str, per_minute: int, pause: float) -> int:
        now = self._clock()
        self._paces[name] = pace = self.pace(name).after_429(per_minute, now, pause)
        return pace.limit(per_minute, now)

    async def limit(self, name: str, per_minute: int) -> int:
        return self.pace(name).limit(per_minute, self._clock())


class Budget:
    """At most `per_minute` requests in any sliding window of `period` seconds, counted in
    `window` (this process's memory unless given one every process shares)."""

    def __init__(
        self,
        per_minute: int,
        *,
        name: str = "requests",
        period: float = 60.0,
        window: Window | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        if period <= 0:
            raise ValueError("period must be positive")
        self.name = name
        self.per_minute = per_minute
        self.period = period
        self.window: Window = window if window is not None else MemoryWindow(clock)
        self._lock = asyncio.Lock()

    async def throttled(self, retry_after: float | None) -> None:
        """The service answered 429 to a request of this budget: pause and slow down."""
        pause = DEFAULT_PAUSE if retry_after is None else retry_after
        limit = await self.window.slow(self.name, self.per_minute, pause)
        log.warning(
            "video API: 429 on %s; pausing %.0f s, then %d a minute, recovering",
            self.name,
            pause,
            limit,
        )

    async def limit(self) -> int:
        """How many requests a window allows now (less than `per_minute` after a 429)."""
        return await self.window.limit(self.name, self.per_minute)

    async def available(self) -> int:
        """How many requests could go right now without waiting (for callers that choose
        what to send first when the budget is short)."""
        if self._lock.locked():
            return 0  # someone is already waiting
        return await self.window.room(self.name, self.per_minute, self.period)

    async def acquire(self) -> None:
        """Wait until one more request fits in the window, then count it."""
        async with self._lock:  # FIFO: the longest waiter goes first
            while True:
                wait = await self.window.take(self.name, self.per_minute, self.period)
                if wait <= 0:
                    return
                log.debug("%s budget: waiting %.2f s", self.name, wait)
                await asyncio.sleep(max(wait, 0.001))


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
