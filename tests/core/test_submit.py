"""Submitting: every check, the hold, and what the API's answer does to the job."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import pytest
from jobkit import (
    CHANNEL,
    GUILD,
    MOD,
    USER,
    FakeAPI,
    bad_request,
    outcome_unknown,
    params,
    request,
    words,
)

from bot.api import errors
from bot.core import Core
from bot.core.refusals import Refusal, UnknownModel
from storage import Database, Job, JobState
from tests.shared import Clock


async def holds_of(db: Database, job_id: int) -> list[tuple[str, str | None, int]]:
    async with db.read() as store:
        return [(e.kind, e.pool, e.amount) for e in await store.job_ledger(job_id)]


async def test_an_accepted_submission_holds_the_price_and_is_queued(
    core: Core, api: FakeAPI, db: Database, clock: Clock
) -> None:
    job = await core.submitting.submit(request())
    assert job.state is JobState.QUEUED
    assert job.task_id == "task-1"
    assert job.price == 30
    assert job.params["images"] and job.params["duration"] == 5
    assert job.inputs[0].filename == "cat.png"
    assert job.next_poll_at == clock.now + timedelta(seconds=3)
    assert api.calls == [("vidu-q3-pro-i2v", job.params)]
    assert await holds_of(db, job.id) == [("hold", "period", 30)]
    balance = await core.moderation.balance(GUILD, USER)
    assert (balance.used, balance.held, balance.available) == (30, 30, 70)


async def test_quote_shows_what_submit_charges(core: Core, db: Database) -> None:
    await core.moderation.update_guild_settings(GUILD, MOD, max_concurrent=10)
    for kwargs in (
        {"duration": 3, "resolution": "1080p"},
        {"duration": 7, "resolution": "540p", "off_peak": True},
        {"duration": 16},
    ):
        quote = await core.submitting.quote(GUILD, USER, "vidu-q3-pro-i2v", params(**kwargs))
        await core.moderation.grant_bonus(GUILD, USER, quote.price, "room", MOD)
        job = await core.submitting.submit(request(**kwargs))
        assert quote.affordable
        assert sum(a for k, _, a in await holds_of(db, job.id) if k == "hold") == quote.price
    quote = await core.submitting.quote(
        GUILD, USER, "vidu-q3-pro-i2v", params(duration=7, off_peak=True)
    )
    assert quote.price == 21  # 6 × 7 = 42, half price off-peak


async def test_a_refusal_is_user_facing_and_writes_nothing(
    core: Core, db: Database, api: FakeAPI
) -> None:
    with pytest.raises(Refusal) as caught:
        await core.submitting.submit(request(model="vidu-q9"))
    assert isinstance(caught.value, UnknownModel)
    assert caught.value.code == "model_unknown" and caught.value.model == "vidu-q9"
    assert "vidu-q3-pro-i2v" in words(caught.value)  # says what to choose instead
    async with db.read() as store:
        assert await store.ledger_entries() == []
        assert await store.jobs_in_states(list(JobState)) == []
    assert api.calls == []


async def test_an_invalid_request_names_the_field(core: Core) -> None:
    with pytest.raises(Refusal) as caught:
        await core.submitting.submit(request(duration=40))
    assert caught.value.code == "invalid_request"
    assert "duration" in words(caught.value) and "16" in words(caught.value)
    with pytest.raises(Refusal) as caught:
        await core.submitting.quote(GUILD, USER, "vidu-q3-pro-i2v", {"prompt": "no image"})
    assert caught.value.code == "invalid_request"
    assert "images" in words(caught.value)


async def test_a_disabled_model_is_refused_with_the_enabled_ones(core: Core) -> None:
    await core.moderation.update_guild_settings(GUILD, MOD, enabled_models=["vidu-q3-turbo-i2v"])
    with pytest.raises(Refusal) as caught:
        await core.submitting.submit(request())
    assert caught.value.code == "model_disabled"
    assert "vidu-q3-turbo-i2v" in words(caught.value)
    with pytest.raises(Refusal):
        await core.submitting.quote(GUILD, USER, "vidu-q3-pro-i2v", params())
    job = await core.submitting.submit(request(model="vidu-q3-turbo-i2v"))
    assert job.state is JobState.QUEUED and job.price == 15


async def test_channels_can_be_restricted(core: Core) -> None:
    await core.moderation.update_guild_settings(GUILD, MOD, allowed_channels=[77, 78])
    with pytest.raises(Refusal) as caught:
        await core.submitting.submit(request(channel=CHANNEL))
    assert caught.value.code == "channel_not_allowed"
    assert "<#77>" in words(caught.value)
    assert (await core.submitting.submit(request(channel=78))).state is JobState.QUEUED
    await core.moderation.update_guild_settings(GUILD, MOD, allowed_channels=[])
    assert (await core.submitting.submit(request(channel=CHANNEL))).state is JobState.QUEUED


async def test_a_blocked_member_cannot_submit_until_unblocked(core: Core) -> None:
    await core.moderation.block(GUILD, USER, MOD, "spam")
    with pytest.raises(Refusal) as caught:
        await core.submitting.submit(request())
    assert caught.value.code == "blocked"
    quote = await core.submitting.quote(GUILD, USER, "vidu-q3-pro-i2v", params())
    assert not quote.affordable and quote.balance.blocked
    await core.moderation.unblock(GUILD, USER, MOD)
    assert (await core.submitting.submit(request())).state is JobState.QUEUED


async def test_running_jobs_are_capped_per_member(core: Core) -> None:
    first = await core.submitting.submit(request(duration=1))
    await core.submitting.submit(request(duration=1))
    with pytest.raises(Refusal) as caught:
        await core.submitting.submit(request(duration=1))
    assert caught.value.code == "too_many_jobs"
    assert "2" in words(caught.value)
    # Another member is not affected; a finished job frees a slot.
    assert (
        await core.submitting.submit(request(user=USER + 1, duration=1))
    ).state is JobState.QUEUED
    from jobkit import result

    await core.lifecycle.apply_result(first.id, result("FAILED", reason="nope"))
    assert (await core.submitting.submit(request(duration=1))).state is JobState.QUEUED
    await core.moderation.update_guild_settings(GUILD, MOD, max_concurrent=3)
    assert (await core.submitting.submit(request(duration=1))).state is JobState.QUEUED


async def test_not_enough_credits_says_what_is_left_and_what_it_costs(
    core: Core,
) -> None:
    await core.moderation.set_allowance(GUILD, USER, 20, MOD)
    with pytest.raises(Refusal) as caught:
        await core.submitting.submit(request())
    assert caught.value.code == "not_enough_credits"
    message = words(caught.value)
    assert "30 credits" in message and "20 credits left" in message
    assert "2025-03-10 00:00 UTC" in message  # the next Monday: when the week renews
    quote = await core.submitting.quote(GUILD, USER, "vidu-q3-pro-i2v", params())
    assert not quote.affordable and quote.balance.available == 20


async def test_bonus_is_spent_after_the_period_allowance(core: Core, db: Database) -> None:
    await core.moderation.set_allowance(GUILD, USER, 40, MOD)
    await core.moderation.grant_bonus(GUILD, USER, 25, "event prize", MOD)
    first = await core.submitting.submit(request())  # 30: all from the period
    second = await core.submitting.submit(request())  # 10 from the period, 20 from bonus
    assert await holds_of(db, first.id) == [("hold", "period", 30)]
    assert await holds_of(db, second.id) == [("hold", "period", 10), ("hold", "bonus", 20)]
    balance = await core.moderation.balance(GUILD, USER)
    assert (balance.used, balance.bonus, balance.available) == (40, 5, 5)


async def test_unlimited_members_never_run_out_and_leave_bonus_alone(
    core: Core, db: Database
) -> None:
    await core.moderation.set_allowance(GUILD, USER, None, MOD)
    await core.moderation.grant_bonus(GUILD, USER, 10, "", MOD)
    await core.moderation.update_guild_settings(GUILD, MOD, max_concurrent=10)
    for _ in range(6):
        await core.submitting.submit(request(duration=16, resolution="1080p"))  # 128 each
    balance = await core.moderation.balance(GUILD, USER)
    assert balance.allowance is None and balance.available is None
    assert balance.used == 6 * 128 and balance.bonus == 10


async def test_the_guild_daily_cap_counts_every_member_today(core: Core, clock: Clock) -> None:
    await core.moderation.update_guild_settings(GUILD, MOD, daily_cap=70)
    await core.submitting.submit(request(user=1001))
    await core.submitting.submit(request(user=1002))
    with pytest.raises(Refusal) as caught:
        await core.submitting.submit(request(user=1003))
    assert caught.value.code == "guild_cap"
    assert "10 credits left today" in words(caught.value)
    assert (await core.submitting.submit(request(user=1003, duration=1))).price == 6
    # Another guild is not affected; the next UTC day starts afresh.
    assert (await core.submitting.submit(request(guild=GUILD + 1))).state is JobState.QUEUED
    clock.advance(hours=12)
    assert (await core.submitting.submit(request(user=1003))).state is JobState.QUEUED


async def test_released_credits_do_not_count_against_the_daily_cap(
    core: Core, api: FakeAPI
) -> None:
    await core.moderation.update_guild_settings(GUILD, MOD, daily_cap=30)
    api.failures.append(bad_request())
    rejected = await core.submitting.submit(request())
    assert rejected.state is JobState.REJECTED
    assert (await core.submitting.submit(request())).state is JobState.QUEUED


async def test_the_operator_daily_cap_spans_every_guild(
    make_core: Callable[..., Core],
) -> None:
    core = make_core(operator_daily_cap=60)
    await core.submitting.submit(request(guild=1))
    await core.submitting.submit(request(guild=2))
    with pytest.raises(Refusal) as caught:
        await core.submitting.submit(request(guild=3))
    assert caught.value.code == "operator_cap"
    assert "all servers" in words(caught.value)


async def test_an_api_rejection_releases_the_hold_in_member_words(
    core: Core, api: FakeAPI, db: Database
) -> None:
    api.failures.append(bad_request("ILLEGAL_PROMPT"))
    job = await core.submitting.submit(request())
    assert job.state is JobState.REJECTED
    assert job.failure_reason is not None and "content policy" in job.failure_reason
    assert job.finished_at is not None and job.task_id is None
    assert await holds_of(db, job.id) == [("hold", "period", 30), ("release", "period", 30)]
    assert (await core.moderation.balance(GUILD, USER)).available == 100


@pytest.mark.parametrize(
    "error",
    [
        errors.RateLimitError(429, "RATE_LIMIT_EXCEEDED", "slow down", retry_after=5.0),
        errors.AuthenticationError(401, "INVALID_API_KEY", "bad key"),
        errors.APIConnectionError("connection refused"),
    ],
)
async def test_errors_that_prove_nothing_was_accepted_reject(
    core: Core, api: FakeAPI, error: errors.VideoAPIError
) -> None:
    api.failures.append(error)
    job = await core.submitting.submit(request())
    assert job.state is JobState.REJECTED
    assert job.failure_reason == error.member_message
    assert (await core.moderation.balance(GUILD, USER)).held == 0


@pytest.mark.parametrize(
    "error",
    [
        outcome_unknown(),
        errors.ServerError(503, "SERVICE_NOT_AVAILABLE", "down"),
        errors.APITimeoutError("read timeout"),
        errors.MalformedResponseError("not JSON", status=200, body_excerpt="<html>"),
        RuntimeError("a bug between the request and its answer"),
    ],
)
async def test_an_unknown_outcome_stays_submitting_and_is_never_resent(
    core: Core, api: FakeAPI, db: Database, error: Exception
) -> None:
    api.failures.append(error)
    job = await core.submitting.submit(request())
    assert job.state is JobState.SUBMITTING
    assert job.task_id is None
    assert job.failure_reason is not None and "held" in job.failure_reason
    assert len(api.calls) == 1
    assert (await core.moderation.balance(GUILD, USER)).held == 30
    # Recovery settles it: LOST, released, not sent again.
    [lost] = [j for j in await _recover_and_list(core, db) if j.id == job.id]
    assert lost.state is JobState.LOST
    assert len(api.calls) == 1
    assert (await core.moderation.balance(GUILD, USER)).available == 100


async def _recover_and_list(core: Core, db: Database) -> list[Job]:
    await core.housekeeping.recover(60)
    async with db.read() as store:
        return await store.jobs_in_states(list(JobState))


async def test_a_reroll_points_at_a_job_of_the_same_guild(core: Core) -> None:
    original = await core.submitting.submit(request())
    reroll = await core.submitting.submit(request(reroll_of=original.id))
    assert reroll.reroll_of == original.id
    with pytest.raises(Refusal) as caught:
        await core.submitting.submit(request(guild=GUILD + 1, reroll_of=original.id))
    assert caught.value.code == "not_found"


async def test_each_transition_logs_one_line_with_job_guild_task_and_state(
    core: Core, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.core")
    job = await core.submitting.submit(request())
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("job ")]
    assert f"job {job.id} guild {GUILD} task None: new -> SUBMITTING" in lines
    assert f"job {job.id} guild {GUILD} task task-1: SUBMITTING -> QUEUED" in lines
