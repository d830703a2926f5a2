"""The pure quota functions: UTC periods and their boundaries, balances, hold splits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.quota import (
    Allowance,
    HoldSplit,
    compute_balance,
    day_start,
    effective_allowance,
    period_end,
    period_key,
    period_start,
    resettable,
    split_hold,
)
from storage import Balance, MemberQuota, MemberUsage


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "moment", "start", "end", "key"),
    [
        ("day", utc(2025, 3, 5, 12), utc(2025, 3, 5), utc(2025, 3, 6), "2025-03-05"),
        ("day", utc(2025, 12, 31, 23, 59), utc(2025, 12, 31), utc(2026, 1, 1), "2025-12-31"),
        ("week", utc(2025, 3, 5, 12), utc(2025, 3, 3), utc(2025, 3, 10), "2025-W10"),
        ("week", utc(2025, 3, 3), utc(2025, 3, 3), utc(2025, 3, 10), "2025-W10"),
        ("week", utc(2025, 3, 9, 23, 59), utc(2025, 3, 3), utc(2025, 3, 10), "2025-W10"),
        # ISO weeks cross years: 2024-12-30 is Monday of 2025-W01.
        ("week", utc(2025, 1, 1), utc(2024, 12, 30), utc(2025, 1, 6), "2025-W01"),
        ("week", utc(2021, 1, 3), utc(2020, 12, 28), utc(2021, 1, 4), "2020-W53"),
        ("month", utc(2025, 3, 5, 12), utc(2025, 3, 1), utc(2025, 4, 1), "2025-03"),
        ("month", utc(2025, 12, 15), utc(2025, 12, 1), utc(2026, 1, 1), "2025-12"),
        ("month", utc(2024, 2, 29, 23), utc(2024, 2, 1), utc(2024, 3, 1), "2024-02"),
    ],
)
def test_period_boundaries(
    period: str, moment: datetime, start: datetime, end: datetime, key: str
) -> None:
    assert period_start(period, moment) == start  # type: ignore[arg-type]
    assert period_end(period, moment) == end  # type: ignore[arg-type]
    assert period_key(period, moment) == key  # type: ignore[arg-type]


def test_period_none_has_no_boundaries() -> None:
    moment = utc(2025, 3, 5)
    assert period_start("none", moment) is None
    assert period_end("none", moment) is None
    assert period_key("none", moment) == "all"


def test_periods_are_utc_whatever_zone_the_time_comes_in() -> None:
    tokyo = timezone(timedelta(hours=9))
    # 08:00 on the 1st in Tokyo is still the last day of the previous month in UTC.
    moment = datetime(2025, 4, 1, 8, 0, tzinfo=tokyo)
    assert period_key("month", moment) == "2025-03"
    assert period_start("day", moment) == utc(2025, 3, 31)
    assert day_start(moment) == utc(2025, 3, 31)


def test_naive_times_and_unknown_periods_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        period_start("day", datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="unknown period"):
        period_start("year", utc(2025, 1, 1))  # type: ignore[arg-type]


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
        lambda d: d.replace(tzinfo=UTC)
    ),
    st.sampled_from(["day", "week", "month"]),
)
def test_a_moment_lies_in_its_period_and_the_next_starts_where_it_ends(
    moment: datetime, period: str
) -> None:
    start = period_start(period, moment)  # type: ignore[arg-type]
    end = period_end(period, moment)  # type: ignore[arg-type]
    assert start is not None and end is not None
    assert start <= moment < end
    assert period_start(period, end) == end  # type: ignore[arg-type]
    assert period_key(period, end) != period_key(period, moment)  # type: ignore[arg-type]
    if period == "week":
        assert start.weekday() == 0


def balance(allowance: int | None, used: int = 0, bonus: int = 0) -> Balance:
    return Balance(
        allowance=allowance,
        blocked=False,
        period="week",
        used=used,
        held=0,
        bonus=bonus,
        available=None if allowance is None else max(0, allowance - used) + bonus,
        resets_at=None,
    )


def test_split_hold_spends_the_period_first_then_bonus() -> None:
    assert split_hold(30, balance(100)) == HoldSplit(30, 0)
    assert split_hold(30, balance(100, used=80, bonus=15)) == HoldSplit(20, 10)
    assert split_hold(30, balance(100, used=100, bonus=30)) == HoldSplit(0, 30)
    assert split_hold(30, balance(100, used=120, bonus=30)) == HoldSplit(0, 30)
    assert split_hold(30, balance(100, used=80, bonus=9)) is None
    assert split_hold(500, balance(None)) == HoldSplit(500, 0)
    assert split_hold(0, balance(0)) == HoldSplit(0, 0)
    with pytest.raises(ValueError):
        split_hold(-1, balance(10))


@given(
    price=st.integers(0, 500),
    allowance=st.integers(0, 500),
    used=st.integers(0, 600),
    bonus=st.integers(0, 500),
)
def test_a_split_hold_never_overdraws_either_pool(
    price: int, allowance: int, used: int, bonus: int
) -> None:
    split = split_hold(price, balance(allowance, used, bonus))
    available = max(0, allowance - used) + bonus
    if split is None:
        assert price > available
    else:
        assert split.total == price
        assert 0 <= split.period <= max(0, allowance - used)
        assert 0 <= split.bonus <= bonus
        assert split.bonus == 0 or split.period == max(0, allowance - used)


def test_compute_balance_from_ledger_sums() -> None:
    usage = MemberUsage(
        held_anytime=15,
        period_held=10,
        period_committed=50,
        period_reset=20,
        bonus_granted=30,
        bonus_held=5,
        bonus_committed=10,
    )
    now = utc(2025, 3, 5, 12)
    result = compute_balance(allowance=100, blocked=False, period="week", usage=usage, now=now)
    assert (result.used, result.held, result.bonus, result.available) == (40, 15, 15, 75)
    assert result.resets_at == utc(2025, 3, 10)
    assert resettable(usage) == 30
    lowered = compute_balance(allowance=10, blocked=True, period="day", usage=usage, now=now)
    assert lowered.available == 15 and lowered.blocked  # period part floors at 0


def test_effective_allowance() -> None:
    base = MemberQuota(guild_id=1, user_id=2)
    assert effective_allowance(base, 100) == Allowance(100, "server")
    own = base.model_copy(update={"allowance": 5})
    assert effective_allowance(own, 100) == Allowance(5, "member")
    unlimited = base.model_copy(update={"unlimited": True})
    assert effective_allowance(unlimited, 100) == Allowance(None, "member")


def test_role_allowances_the_largest_counts_and_a_members_own_setting_wins() -> None:
    base = MemberQuota(guild_id=1, user_id=2)
    roles = {10: 300, 11: 50, 12: 900}
    assert effective_allowance(base, 100, roles, [10, 11]) == Allowance(300, "role", 10)
    assert effective_allowance(base, 100, roles, [11, 12, 99]) == Allowance(900, "role", 12)
    assert effective_allowance(base, 100, roles, [99]) == Allowance(100, "server")  # no such role
    assert effective_allowance(base, 100, {10: 0}, [10]) == Allowance(0, "role", 10)
    own = base.model_copy(update={"allowance": 5})
    assert effective_allowance(own, 100, roles, [12]) == Allowance(5, "member")
