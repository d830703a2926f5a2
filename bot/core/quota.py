"""Quota arithmetic: periods, balances and how a hold is split. Pure functions, no I/O.

Periods are UTC: a day starts at 00:00, a week on Monday 00:00 (ISO weeks), a month on the
1st at 00:00. The period `none` never resets (a one-off allowance).

A member's period allowance is spent first and their bonus credits after it; a hold records
which pool each credit came from, so committing or releasing it puts every credit back
where it was taken.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from storage.models import AllowanceSource, Balance, MemberQuota, MemberUsage, Period

PERIODS: tuple[Period, ...] = ("day", "week", "month", "none")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _utc(moment: datetime) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError("quota times must be timezone-aware")
    return moment.astimezone(UTC)


def day_start(moment: datetime) -> datetime:
    """00:00 UTC of the day containing `moment` (the daily spending caps count from here)."""
    moment = _utc(moment)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def period_start(period: Period, moment: datetime) -> datetime | None:
    """When the period containing `moment` began; None for `none` (the start of time)."""
    start = day_start(moment)
    if period == "day":
        return start
    if period == "week":
        return start - timedelta(days=start.weekday())
    if period == "month":
        return start.replace(day=1)
    if period == "none":
        return None
    raise ValueError(f"unknown period {period!r}; choose one of {', '.join(PERIODS)}")


def period_end(period: Period, moment: datetime) -> datetime | None:
    """When the period containing `moment` ends (= the next one starts); None for `none`."""
    start = period_start(period, moment)
    if start is None:
        return None
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def period_key(period: Period, moment: datetime) -> str:
    """A readable name of the period containing `moment`: 2025-01-31, 2025-W05, 2025-01, all."""
    moment = _utc(moment)
    if period == "day":
        return moment.strftime("%Y-%m-%d")
    if period == "week":
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return moment.strftime("%Y-%m")
    if period == "none":
        return "all"
    raise ValueError(f"unknown period {period!r}; choose one of {', '.join(PERIODS)}")


@dataclass(frozen=True, slots=True)
class Allowance:
    """A member's allowance per period (None: unlimited) and where it comes from."""

    credits: int | None
    source: AllowanceSource
    role_id: int | None = None


def effective_allowance(
    quota: MemberQuota,
    guild_allowance: int,
    role_allowances: Mapping[int, int] | None = None,
    role_ids: Iterable[int] = (),
) -> Allowance:
    """The member's own setting wins; else the largest allowance of the roles they hold that
    have one; else the server default."""
    if quota.unlimited:
        return Allowance(None, "member")
    if quota.allowance is not None:
        return Allowance(quota.allowance, "member")
    holds = set(role_ids)
    held = [(credits, role) for role, credits in (role_allowances or {}).items() if role in holds]
    if held:
        credits, role = max(held)
        return Allowance(credits, "role", role)
    return Allowance(guild_allowance, "server")


def compute_balance(
    *,
    allowance: int | Allowance | None,
    blocked: bool,
    period: Period,
    usage: MemberUsage,
    now: datetime,
) -> Balance:
    """Turn the ledger's sums into what a member sees. Never negative.

    `used` can exceed a lowered allowance; the period part of `available` then stays at 0.
    `available` ignores `blocked` (it is what the member gets back when unblocked).
    """
    if not isinstance(allowance, Allowance):
        allowance = Allowance(allowance, "server")
    used = max(0, usage.period_held + usage.period_committed - usage.period_reset)
    bonus = max(0, usage.bonus_granted - usage.bonus_held - usage.bonus_committed)
    credits = allowance.credits
    available = None if credits is None else max(0, credits - used) + bonus
    return Balance(
        allowance=credits,
        allowance_source=allowance.source,
        allowance_role_id=allowance.role_id,
        blocked=blocked,
        period=period,
        used=used,
        held=usage.held_anytime,
        bonus=bonus,
        available=available,
        resets_at=period_end(period, now),
    )


def resettable(usage: MemberUsage) -> int:
    """How much a reset gives back: committed use this period, never what is still held."""
    return max(0, usage.period_committed - usage.period_reset)


def bonus_removable(usage: MemberUsage) -> int:
    """How many bonus credits a negative grant may take away (never below zero)."""
    return max(0, usage.bonus_granted - usage.bonus_held - usage.bonus_committed)


@dataclass(frozen=True, slots=True)
class HoldSplit:
    """How many credits of one hold come from the period allowance and from bonus."""

    period: int
    bonus: int

    @property
    def total(self) -> int:
        return self.period + self.bonus


def split_hold(price: int, balance: Balance) -> HoldSplit | None:
    """Period allowance first, bonus after; None when the two together are not enough."""
    if price < 0:
        raise ValueError("a price cannot be negative")
    if balance.allowance is None:
        return HoldSplit(period=price, bonus=0)
    from_period = min(price, max(0, balance.allowance - balance.used))
    from_bonus = price - from_period
    if from_bonus > balance.bonus:
        return None
    return HoldSplit(period=from_period, bonus=from_bonus)


def describe_allowance(allowance: int | None, period: Period) -> str:
    if allowance is None:
        return "unlimited"
    return f"{allowance} credits" + ("" if period == "none" else f" per {period}")
