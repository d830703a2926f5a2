"""Moderator operations, resets, grants and period rollover, all read back from the ledger."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from jobkit import GUILD, MOD, USER, request, result, words

from bot.core import Core
from bot.core.refusals import Refusal
from bot.discord.wording import mentions
from storage import Database, JobState
from tests.shared import Clock


async def member_rows(db: Database, user: int | None = USER) -> list[tuple[str, int, str]]:
    async with db.read() as store:
        return [(e.kind, e.amount, e.actor) for e in await store.ledger_entries(GUILD, user)]


async def test_every_moderator_operation_writes_a_row_with_the_moderator_as_actor(
    core: Core, db: Database
) -> None:
    await core.moderation.set_allowance(GUILD, USER, 50, MOD)
    await core.moderation.set_allowance(GUILD, USER, None, MOD)
    await core.moderation.clear_allowance(GUILD, USER, MOD)
    await core.moderation.grant_bonus(GUILD, USER, 20, "won the contest", MOD)
    await core.moderation.grant_bonus(GUILD, USER, -5, "", MOD)
    await core.moderation.reset_usage(GUILD, USER, MOD)
    await core.moderation.block(GUILD, USER, MOD, "spam")
    await core.moderation.unblock(GUILD, USER, MOD)
    await core.moderation.set_guild_default(GUILD, 200, "month", MOD)
    await core.moderation.update_guild_settings(GUILD, MOD, daily_cap=1000, allowed_channels=[5])
    async with db.read() as store:
        entries = await store.ledger_entries(GUILD)
    assert [e.kind for e in entries] == [
        "set",
        "set",
        "set",
        "grant",
        "grant",
        "reset",
        "block",
        "unblock",
        "default",
        "default",
    ]
    assert {e.actor for e in entries} == {str(MOD)}
    reasons = [e.reason for e in entries]
    assert reasons[0] == "allowance set to 50 credits per week"
    assert reasons[1] == "allowance set to unlimited"
    assert reasons[3] == "won the contest"
    assert reasons[6] == "spam"
    assert reasons[8] == "server default set to 200 credits per month"
    # The core names the channel neutrally; Discord's front end shows it as a mention.
    assert "daily cap: 1000 credits" in reasons[9] and "{channel:5}" in reasons[9]
    assert "channels: <#5>;" in mentions(reasons[9])
    assert entries[8].user_id is None
    settings = await core.moderation.guild_settings(GUILD)
    assert (settings.allowance, settings.period, settings.daily_cap) == (200, "month", 1000)
    assert settings.allowed_channels == [5]


async def test_allowance_override_unlimited_and_back_to_default(core: Core) -> None:
    assert (await core.moderation.balance(GUILD, USER)).allowance == 100
    assert (await core.moderation.set_allowance(GUILD, USER, 10, MOD)).available == 10
    unlimited = await core.moderation.set_allowance(GUILD, USER, None, MOD)
    assert unlimited.allowance is None and unlimited.available is None
    await core.moderation.set_guild_default(GUILD, 40, "day", MOD)
    back = await core.moderation.clear_allowance(GUILD, USER, MOD)
    assert (back.allowance, back.period, back.available) == (40, "day", 40)
    with pytest.raises(Refusal):
        await core.moderation.set_allowance(GUILD, USER, -1, MOD)


async def test_blocking_keeps_the_override(core: Core) -> None:
    await core.moderation.set_allowance(GUILD, USER, 10, MOD)
    blocked = await core.moderation.block(GUILD, USER, MOD)
    assert blocked.blocked and blocked.allowance == 10
    unblocked = await core.moderation.unblock(GUILD, USER, MOD)
    assert not unblocked.blocked and unblocked.allowance == 10


async def test_a_negative_grant_removes_bonus_but_never_below_zero(
    core: Core, db: Database
) -> None:
    await core.moderation.set_allowance(GUILD, USER, 0, MOD)
    await core.moderation.grant_bonus(GUILD, USER, 50, "gift", MOD)
    await core.submitting.submit(request())  # 30 of the bonus held
    balance = await core.moderation.grant_bonus(GUILD, USER, -100, "too generous", MOD)
    assert balance.bonus == 0 and balance.available == 0
    assert ("grant", -20, str(MOD)) in await member_rows(db)
    with pytest.raises(Refusal) as caught:
        await core.moderation.grant_bonus(GUILD, USER, -1, "", MOD)
    assert "no unused bonus" in words(caught.value)
    with pytest.raises(Refusal):
        await core.moderation.grant_bonus(GUILD, USER, 0, "", MOD)


async def test_reset_clears_committed_use_but_not_what_is_held(core: Core) -> None:
    await core.moderation.update_guild_settings(GUILD, MOD, max_concurrent=5)
    done = await core.submitting.submit(request())
    running = await core.submitting.submit(request())
    await core.lifecycle.apply_result(done.id, result("SUCCEED"))
    assert (await core.moderation.balance(GUILD, USER)).used == 60
    after = await core.moderation.reset_usage(GUILD, USER, MOD)
    assert (after.used, after.held, after.available) == (30, 30, 70)
    # The held job succeeding later still counts; resetting again gives that back too.
    await core.lifecycle.apply_result(running.id, result("SUCCEED"))
    assert (await core.moderation.balance(GUILD, USER)).used == 30
    assert (await core.moderation.reset_usage(GUILD, USER, MOD)).used == 0
    assert (await core.moderation.reset_usage(GUILD, USER, MOD)).used == 0


async def test_reset_then_release_of_a_held_job_never_goes_negative(
    core: Core,
) -> None:
    running = await core.submitting.submit(request())
    await core.moderation.reset_usage(GUILD, USER, MOD)  # nothing committed: gives back 0
    await core.lifecycle.apply_result(running.id, result("FAILED"))
    balance = await core.moderation.balance(GUILD, USER)
    assert (balance.used, balance.available) == (0, 100)


async def test_the_allowance_renews_at_the_period_boundary(core: Core, clock: Clock) -> None:
    job = await core.submitting.submit(request())
    await core.lifecycle.apply_result(job.id, result("SUCCEED"))
    balance = await core.moderation.balance(GUILD, USER)
    assert balance.available == 70
    assert balance.resets_at is not None and balance.resets_at.isoformat() == (
        "2025-03-10T00:00:00+00:00"
    )
    clock.now = balance.resets_at - __import__("datetime").timedelta(microseconds=1)
    assert (await core.moderation.balance(GUILD, USER)).available == 70
    clock.now = balance.resets_at
    renewed = await core.moderation.balance(GUILD, USER)
    assert (renewed.used, renewed.available) == (0, 100)
    assert renewed.resets_at is not None and renewed.resets_at.isoformat() == (
        "2025-03-17T00:00:00+00:00"
    )


async def test_usage_belongs_to_the_period_the_hold_was_placed_in(core: Core, clock: Clock) -> None:
    await core.moderation.set_guild_default(GUILD, 50, "day", MOD)
    job = await core.submitting.submit(request())  # held on Wednesday
    clock.advance(days=1)
    assert (await core.moderation.balance(GUILD, USER)).available == 50  # Thursday: fresh
    await core.lifecycle.apply_result(job.id, result("SUCCEED"))  # committed on Thursday
    thursday = await core.moderation.balance(GUILD, USER)
    assert (thursday.used, thursday.available) == (0, 50)  # charged to Wednesday


async def test_bonus_survives_rollover(core: Core, clock: Clock) -> None:
    await core.moderation.set_allowance(GUILD, USER, 10, MOD)
    await core.moderation.grant_bonus(GUILD, USER, 30, "", MOD)
    job = await core.submitting.submit(request())  # 10 period + 20 bonus
    await core.lifecycle.apply_result(job.id, result("SUCCEED"))
    clock.advance(days=7)
    balance = await core.moderation.balance(GUILD, USER)
    assert (balance.used, balance.bonus, balance.available) == (0, 10, 20)


async def test_period_none_never_renews(core: Core, clock: Clock) -> None:
    await core.moderation.set_guild_default(GUILD, 30, "none", MOD)
    job = await core.submitting.submit(request())
    await core.lifecycle.apply_result(job.id, result("SUCCEED"))
    clock.advance(days=400)
    balance = await core.moderation.balance(GUILD, USER)
    assert balance.available == 0 and balance.resets_at is None
    with pytest.raises(Refusal) as caught:
        await core.submitting.submit(request())
    assert "renew" not in words(caught.value)


async def test_guild_settings_are_validated(core: Core) -> None:
    with pytest.raises(Refusal) as caught:
        await core.moderation.update_guild_settings(GUILD, MOD, enabled_models=["vidu-x"])
    assert caught.value.code == "model_unknown"
    cases: list[dict[str, Any]] = [{"enabled_models": []}, {"max_concurrent": 0}, {"daily_cap": -1}]
    for kwargs in cases:
        with pytest.raises(Refusal) as caught:
            await core.moderation.update_guild_settings(GUILD, MOD, **kwargs)
        assert caught.value.code == "invalid_request"
    with pytest.raises(Refusal):
        await core.moderation.set_guild_default(GUILD, 10, "year", MOD)  # type: ignore[arg-type]
    unchanged = await core.moderation.update_guild_settings(GUILD, MOD)
    assert unchanged.enabled_models is None


async def test_the_ledger_reads_in_pages_newest_first(
    core: Core, make_core: Callable[..., Core]
) -> None:
    for n in range(1, 26):
        await core.moderation.grant_bonus(GUILD, USER, n, f"gift {n}", MOD)
    await core.moderation.grant_bonus(GUILD, USER + 1, 1, "other", MOD)
    first = await core.moderation.ledger(GUILD, USER, page=0, per_page=10)
    assert (first.page, first.pages) == (0, 3)
    assert [e.amount for e in first.entries][:3] == [25, 24, 23]
    last = await core.moderation.ledger(GUILD, USER, page=99)
    assert last.page == 2 and [e.amount for e in last.entries] == [5, 4, 3, 2, 1]
    everyone = await core.moderation.ledger(GUILD)
    assert everyone.total == 26 and everyone.entries[0].user_id == USER + 1


async def test_job_holds_appear_in_the_ledger_with_the_system_as_actor(
    core: Core, db: Database
) -> None:
    job = await core.submitting.submit(request())
    await core.lifecycle.apply_result(job.id, result("SUCCEED"))
    assert await member_rows(db) == [("hold", 30, "system"), ("commit", 30, "system")]
    async with db.read() as store:
        [hold, commit] = await store.job_ledger(job.id)
    assert hold.job_id == commit.job_id == job.id
    assert job.state is JobState.QUEUED


async def spend(core: Core, times: int) -> None:
    for _ in range(times):
        job = await core.submitting.submit(request())
        await core.lifecycle.apply_result(job.id, result("SUCCEED"))


async def test_a_reset_does_not_excuse_later_spending_when_the_period_changes(
    core: Core, clock: Clock
) -> None:
    """Found in review: a reset's amount, counted in a new (shorter) window, let a member
    spend twice their allowance in one day."""
    await core.moderation.set_guild_default(GUILD, 60, "week", MOD)
    await core.moderation.update_guild_settings(GUILD, MOD, max_concurrent=5)
    await spend(core, 2)  # Wednesday: 60, the whole weekly allowance
    clock.advance(days=1)
    assert (await core.moderation.reset_usage(GUILD, USER, MOD)).available == 60  # Thursday: reset
    await spend(core, 2)  # Thursday: 60 again
    assert (await core.moderation.balance(GUILD, USER)).available == 0
    await core.moderation.set_guild_default(GUILD, 60, "day", MOD)  # now 60 a day
    thursday = await core.moderation.balance(GUILD, USER)
    assert (thursday.used, thursday.available) == (60, 0)
    with pytest.raises(Refusal):
        await core.submitting.submit(request())


async def test_a_reset_excuses_only_what_was_committed_before_it(core: Core, clock: Clock) -> None:
    await core.moderation.update_guild_settings(GUILD, MOD, max_concurrent=5)
    await spend(core, 1)
    await core.moderation.reset_usage(GUILD, USER, MOD)
    await spend(core, 1)  # after the reset, at the same instant: still counts
    assert (await core.moderation.balance(GUILD, USER)).used == 30


async def test_held_counts_running_jobs_from_an_earlier_period(core: Core, clock: Clock) -> None:
    await core.moderation.set_guild_default(GUILD, 100, "day", MOD)
    job = await core.submitting.submit(request())  # Wednesday
    clock.advance(days=1)
    thursday = await core.moderation.balance(GUILD, USER)
    assert (thursday.used, thursday.held, thursday.available) == (0, 30, 100)
    await core.lifecycle.apply_result(job.id, result("SUCCEED"))
    assert (await core.moderation.balance(GUILD, USER)).held == 0


async def test_a_settings_change_computed_from_stale_settings_is_refused(
    core: Core,
) -> None:
    before = await core.moderation.guild_settings(GUILD)
    await core.moderation.update_guild_settings(GUILD, MOD, allowed_channels=[1], expected=before)
    # A second moderator computed their list from the same, now stale, settings.
    with pytest.raises(Refusal) as refusal:
        await core.moderation.update_guild_settings(
            GUILD, MOD + 1, allowed_channels=[2], expected=before
        )
    assert refusal.value.code == "conflict"
    assert (await core.moderation.guild_settings(GUILD)).allowed_channels == [1]


async def test_role_allowances_are_moderated_and_written_to_the_ledger(
    core: Core, db: Database
) -> None:
    artists, patrons = 501, 502
    await core.moderation.set_role_allowance(GUILD, artists, 300, MOD)
    settings = await core.moderation.set_role_allowance(GUILD, patrons, 900, MOD)
    assert settings.role_allowances == {artists: 300, patrons: 900}

    balance = await core.moderation.balance(GUILD, USER, [artists])
    assert (balance.allowance, balance.allowance_source, balance.allowance_role_id) == (
        300,
        "role",
        artists,
    )
    both = await core.moderation.balance(GUILD, USER, [artists, patrons])
    assert (both.allowance, both.allowance_role_id) == (900, patrons)  # the largest counts
    plain = await core.moderation.balance(GUILD, USER)
    assert (plain.allowance, plain.allowance_source) == (100, "server")

    # A member's own setting still wins; blocked stays blocked.
    await core.moderation.set_allowance(GUILD, USER, 20, MOD, [patrons])
    own = await core.moderation.balance(GUILD, USER, [patrons])
    assert (own.allowance, own.allowance_source) == (20, "member")
    await core.moderation.clear_allowance(GUILD, USER, MOD)
    await core.moderation.block(GUILD, USER, MOD)
    with pytest.raises(Refusal) as caught:
        await core.submitting.submit(request(role_ids=(patrons,)))
    assert caught.value.code == "blocked"

    await core.moderation.remove_role_allowance(GUILD, patrons, MOD)
    after = await core.moderation.balance(GUILD, USER, [artists, patrons])
    assert (after.allowance, after.allowance_role_id) == (300, artists)
    with pytest.raises(Refusal) as caught:
        await core.moderation.remove_role_allowance(GUILD, patrons, MOD)
    assert caught.value.code == "not_found"
    with pytest.raises(Refusal) as caught:
        await core.moderation.set_role_allowance(GUILD, artists, 1_000_001, MOD)
    assert caught.value.code == "invalid_request"

    async with db.read() as store:
        rows = [e for e in await store.ledger_entries(GUILD) if "role" in e.reason]
    assert [(e.kind, e.user_id, e.actor, e.amount) for e in rows] == [
        ("default", None, str(MOD), 300),
        ("default", None, str(MOD), 900),
        ("default", None, str(MOD), 0),
    ]
    assert mentions(rows[0].reason) == "role allowance: <@&501> gets 300 credits per week"
    assert mentions(rows[2].reason) == "role allowance of <@&502> removed"
