"""What tests of every layer share: a fixed moment, and a clock the test moves by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
