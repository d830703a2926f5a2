"""After submission: results, polling errors, delivery, expiry and recovery after a stop."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from jobkit import GUILD, MOD, USER, FakeAPI, make_settings, request, result

from bot.api import errors
from bot.core import Core
from bot.core.housekeeping import Recovery
from bot.core.refusals import Refusal
from bot.core.schedule import Learned
from storage import Database, InputRef, JobState, NewJob
from tests.backends import Backend
from tests.shared import Clock


async def ledger_kinds(db: Database, job_id: int) -> list[tuple[str, str | None, int]]:
    async with db.read() as store:
        return [(e.kind, e.pool, e.amount) for e in await store.job_ledger(job_id)]


async def test_success_commits_the_hold_and_stores_the_result(
    core: Core, db: Database, clock: Clock
) -> None:
    job = await core.submitting.submit(request())
    clock.advance(seconds=40)
    done = await core.lifecycle.apply_result(job.id, result("SUCCEED"))
    assert done.state is JobState.SUCCEEDED
    assert done.progress == 100
    assert done.result_url == "https://video.example/v.mp4?sig=1"
    assert done.result_expires_at == clock.now + timedelta(hours=1)
    assert done.next_poll_at == clock.now  # due for delivery
    assert await ledger_kinds(db, job.id) == [("hold", "period", 30), ("commit", "period", 30)]
    balance = await core.moderation.balance(GUILD, USER)
    assert (balance.used, balance.held, balance.available) == (30, 0, 70)
    # The video waits for its card (it is posted as a reply to it)...
    assert await core.leases.deliveries_due() == []
    await core.lifecycle.card_posted(job.id, 5555)
    assert [j.id for j in await core.leases.deliveries_due()] == [job.id]
    # ...or goes out by DM where the card cannot be posted.
    other = await core.submitting.submit(request())
    await core.lifecycle.apply_result(other.id, result("SUCCEED"))
    assert (await core.lifecycle.no_card(other.id)).card_state == "none"
    assert {j.id for j in await core.leases.deliveries_due()} == {job.id, other.id}


async def test_apply_result_is_idempotent(core: Core, db: Database, clock: Clock) -> None:
    job = await core.submitting.submit(request())
    first = await core.lifecycle.apply_result(job.id, result("SUCCEED"))
    clock.advance(seconds=5)
    second = await core.lifecycle.apply_result(job.id, result("SUCCEED"))
    third = await core.lifecycle.apply_result(job.id, result("FAILED", reason="late"))
    assert first == second == third
    assert len(await ledger_kinds(db, job.id)) == 2
    failed = await core.submitting.submit(request())
    once = await core.lifecycle.apply_result(failed.id, result("FAILED", reason="ILLEGAL_PROMPT"))
    twice = await core.lifecycle.apply_result(failed.id, result("FAILED", reason="ILLEGAL_PROMPT"))
    assert once == twice
    assert await ledger_kinds(db, failed.id) == [
        ("hold", "period", 30),
        ("release", "period", 30),
    ]


async def test_failure_releases_the_hold_and_explains(core: Core) -> None:
    job = await core.submitting.submit(request())
    failed = await core.lifecycle.apply_result(
        job.id, result("FAILED", reason="ILLEGAL_IMAGE_CONTENT")
    )
    assert failed.state is JobState.FAILED
    assert failed.failure_reason is not None and "image" in failed.failure_reason
    assert failed.finished_at is not None and failed.next_poll_at is None
    other = await core.submitting.submit(request())
    odd = await core.lifecycle.apply_result(other.id, result("FAILED", reason="gpu melted"))
    assert odd.failure_reason == "The video service could not make this video: gpu melted"
    assert (await core.moderation.balance(GUILD, USER)).available == 100


async def test_success_without_a_video_is_a_failure(core: Core) -> None:
    from bot.api.models import TaskResult

    job = await core.submitting.submit(request())
    empty = TaskResult.model_validate({"task": {"status": "TASK_STATUS_SUCCEED"}, "videos": []})
    failed = await core.lifecycle.apply_result(job.id, empty)
    assert failed.state is JobState.FAILED
    assert (await core.moderation.balance(GUILD, USER)).held == 0


async def test_progress_moves_to_processing_and_schedules_the_next_poll(
    core: Core, clock: Clock
) -> None:
    job = await core.submitting.submit(request())
    queued = await core.lifecycle.apply_result(job.id, result("QUEUED"))
    assert queued.state is JobState.QUEUED
    clock.advance(seconds=10)
    moving = await core.lifecycle.apply_result(
        job.id, result("PROCESSING", eta=40, progress_percent=20)
    )
    assert moving.state is JobState.PROCESSING
    assert (moving.progress, moving.eta) == (20, 40)
    # Nothing learned yet contradicts the eta: one read just after the end it promises,
    # first in line when reads are short, and the card expects the video then.
    assert moving.next_poll_at == clock.now + timedelta(seconds=40.25)
    assert moving.read_priority == 0 and moving.expected_at == clock.now + timedelta(seconds=40)
    # An eta raised later does not put off the end first promised (a stale number)...
    raised = await core.lifecycle.apply_result(job.id, result("PROCESSING", eta=5000))
    assert raised.next_poll_at == clock.now + timedelta(seconds=40.25)
    # ...and what the bot learned of such jobs (done within 30 to 60 s) overrules an eta
    # far off from the first read on.
    learned = Learned(low=30, typical=45, high=60)
    other = await core.submitting.submit(request())
    far = await core.lifecycle.apply_result(other.id, result("PROCESSING", eta=5000), learned)
    assert far.next_poll_at == other.created_at + timedelta(seconds=30)  # its window opens
    assert far.read_state.get("eta_end") is None
    # ...and without any eta or progress, reads walk through that window.
    clock.advance(seconds=25)
    walking = await core.lifecycle.apply_result(other.id, result("PROCESSING"), learned)
    assert walking.next_poll_at == clock.now + timedelta(seconds=5)  # the least gap
    near = await core.lifecycle.apply_result(
        job.id, result("PROCESSING", eta=1, progress_percent=10)
    )
    assert near.next_poll_at == clock.now + timedelta(seconds=1.25)
    assert near.progress == 20  # progress never goes back
    back = await core.lifecycle.apply_result(job.id, result("QUEUED"))
    assert back.state is JobState.PROCESSING  # never back from PROCESSING to QUEUED
    unknown = await core.lifecycle.apply_result(job.id, result("PROCESSING"))
    assert unknown.state is JobState.PROCESSING


async def test_off_peak_jobs_are_polled_rarely(core: Core, clock: Clock) -> None:
    job = await core.submitting.submit(request(off_peak=True))
    assert job.off_peak and job.next_poll_at == clock.now + timedelta(seconds=300)
    moved = await core.lifecycle.apply_result(job.id, result("PROCESSING", eta=10))
    assert moved.next_poll_at == clock.now + timedelta(seconds=300)


async def test_due_jobs_are_those_whose_poll_time_came(core: Core, clock: Clock) -> None:
    job = await core.submitting.submit(request())
    assert await core.leases.reads_due(10) == []
    clock.advance(seconds=3)
    assert [j.id for j in await core.leases.reads_due(10)] == [job.id]
    await core.lifecycle.apply_result(job.id, result("SUCCEED"))
    assert await core.leases.reads_due(10) == []


async def test_poll_errors_back_off_and_task_not_found_fails(core: Core, clock: Clock) -> None:
    job = await core.submitting.submit(request())
    for attempt, expected in ((1, 6), (2, 12), (3, 24), (4, 48), (5, 60), (6, 60)):
        job = await core.lifecycle.poll_failed(job.id, errors.ServerError(503, "", "down"))
        assert job.attempts == attempt
        assert job.next_poll_at == clock.now + timedelta(seconds=expected)
    limited = await core.lifecycle.poll_failed(
        job.id, errors.RateLimitError(429, "RATE_LIMIT_EXCEEDED", "", retry_after=120.0)
    )
    assert limited.next_poll_at == clock.now + timedelta(seconds=120)
    reset = await core.lifecycle.apply_result(job.id, result("PROCESSING"))
    assert reset.attempts == 0
    not_found = errors.TaskNotFoundError(404, "TASK_NOT_FOUND", "no such task")
    # One "not found" is not believed at once (a lagging replica says it briefly)...
    for count, wait in ((1, 10), (2, 30)):
        asked = await core.lifecycle.poll_failed(job.id, not_found)
        assert asked.state is JobState.PROCESSING, count
        assert asked.next_poll_at == clock.now + timedelta(seconds=wait)
        assert asked.read_state["not_found"] == count
    # ...a good read in between starts the count again...
    found = await core.lifecycle.apply_result(job.id, result("PROCESSING"))
    assert "not_found" not in found.read_state
    for _ in range(2):
        assert (await core.lifecycle.poll_failed(job.id, not_found)).state.is_active
    # ...and the third in a row fails the job, returning the credits.
    gone = await core.lifecycle.poll_failed(job.id, not_found)
    assert gone.state is JobState.FAILED
    assert gone.failure_reason == errors.REASON_MEMBER_MESSAGES["TASK_NOT_FOUND"]
    assert (await core.moderation.balance(GUILD, USER)).held == 0
    again = await core.lifecycle.poll_failed(job.id, errors.ServerError(500, "", ""))
    assert again == gone


async def test_delivery_outcomes(core: Core, clock: Clock) -> None:
    job = await core.submitting.submit(request())
    assert job.card_state == "pending" and job.card_message_id is None
    card = await core.lifecycle.card_posted(job.id, 5555)
    assert (card.card_message_id, card.card_state) == (5555, "posted")
    assert (await core.lifecycle.no_card(job.id)).card_state == "posted"  # a posted card stays
    await core.lifecycle.apply_result(job.id, result("SUCCEED"))
    later = await core.lifecycle.retry_delivery_later(job.id, 30)
    assert later.attempts == 1 and later.next_poll_at == clock.now + timedelta(seconds=30)
    assert await core.leases.deliveries_due() == []
    clock.advance(seconds=30)
    assert [j.id for j in await core.leases.deliveries_due()] == [job.id]
    delivered = await core.lifecycle.mark_delivered(job.id, 777)
    assert delivered.state is JobState.DELIVERED and delivered.delivered_message_id == 777
    assert await core.lifecycle.mark_delivered(job.id, 778) == delivered  # idempotent
    assert await core.leases.deliveries_due() == []

    other = await core.submitting.submit(request())
    await core.lifecycle.apply_result(other.id, result("SUCCEED"))
    stuck = await core.lifecycle.mark_undeliverable(
        other.id, "The channel is gone and DMs are closed."
    )
    assert stuck.state is JobState.UNDELIVERABLE
    assert stuck.failure_reason == "The channel is gone and DMs are closed."
    balance = await core.moderation.balance(GUILD, USER)
    assert balance.used == 60 and balance.held == 0  # both were made, so both are charged


async def test_overdue_jobs_expire_and_are_released(
    make_core: Callable[..., Core], clock: Clock
) -> None:
    core = make_core(job_timeout_minutes=60, off_peak_job_timeout_minutes=600)
    await core.moderation.update_guild_settings(GUILD, MOD, max_concurrent=5)
    normal = await core.submitting.submit(request())
    slow = await core.submitting.submit(request(off_peak=True))
    clock.advance(minutes=59)
    assert await core.housekeeping.expire_overdue() == []
    clock.advance(minutes=2)
    [expired] = await core.housekeeping.expire_overdue()
    assert expired.id == normal.id and expired.state is JobState.EXPIRED
    assert expired.failure_reason is not None and "60 minutes" in expired.failure_reason
    clock.advance(minutes=600)
    [late] = await core.housekeeping.expire_overdue()
    assert late.id == slow.id
    assert (await core.moderation.balance(GUILD, USER)).held == 0
    assert await core.housekeeping.expire_overdue() == []


async def test_an_unknown_outcome_is_given_up_once_no_longer_in_flight(
    core: Core, api: FakeAPI, clock: Clock
) -> None:
    from jobkit import outcome_unknown

    api.failures.append(outcome_unknown())
    job = await core.submitting.submit(request())
    assert job.state is JobState.SUBMITTING
    clock.advance(seconds=60)
    assert await core.housekeeping.expire_overdue() == []  # still within the submit timeout + grace
    clock.advance(seconds=91)
    [lost] = await core.housekeeping.expire_overdue()
    assert lost.id == job.id and lost.state is JobState.LOST
    assert (await core.moderation.balance(GUILD, USER)).available == 100
    assert len(api.calls) == 1


async def test_a_submission_in_flight_is_never_settled_behind_its_back(
    core: Core, api: FakeAPI, clock: Clock
) -> None:
    import asyncio

    api.delay = 0.2
    task = asyncio.create_task(core.submitting.submit(request()))
    await asyncio.sleep(0.05)
    clock.advance(days=1)
    assert await core.housekeeping.expire_overdue() == []
    assert await core.housekeeping.recover(60) == Recovery(lost=[], spread=0)
    job = await task
    assert job.state is JobState.QUEUED and job.task_id == "task-1"


async def test_recovery_after_a_stop_with_a_job_in_each_unfinished_state(
    backend: Backend, clock: Clock
) -> None:
    """Write the database a crashed bot would leave, reopen it, recover."""
    db = await backend.open()
    now = clock.now
    states = {
        "submitting": (JobState.SUBMITTING, None),
        "submitting_with_id": (JobState.SUBMITTING, "t-sub"),
        "queued": (JobState.QUEUED, "t-q"),
        "processing": (JobState.PROCESSING, "t-p"),
        "succeeded": (JobState.SUCCEEDED, "t-s"),
        "delivered": (JobState.DELIVERED, "t-d"),
    }
    ids: dict[str, int] = {}
    async with db.transaction() as store:
        for name, (state, task_id) in states.items():
            job = await store.insert_job(
                NewJob(
                    guild_id=GUILD,
                    channel_id=5,
                    user_id=USER,
                    model="vidu-q3-pro-i2v",
                    params={"images": ["https://x.example/a.png"]},
                    inputs=[InputRef(kind="image", url="https://x.example/a.png")],
                    price=10,
                    card_state="posted",
                ),
                state=JobState.SUBMITTING,
                at=now,
            )
            await store.add_ledger(
                guild_id=GUILD,
                user_id=USER,
                job_id=job.id,
                kind="hold",
                pool="period",
                amount=10,
                actor="system",
                at=now,
            )
            if state in (JobState.SUCCEEDED, JobState.DELIVERED):
                await store.settle_holds(job.id, "commit", actor="system", reason="", at=now)
            await store.update_job(
                job.id,
                now,
                state=state,
                task_id=task_id,
                next_poll_at=now + timedelta(minutes=10) if name == "queued" else None,
                result_url="https://v.example/x.mp4" if name == "succeeded" else None,
            )
            ids[name] = job.id
    await db.close()

    clock.advance(minutes=1)
    db = await backend.open()
    try:
        core = Core.build(db, FakeAPI(), make_settings(), clock=clock)
        recovery = await core.housekeeping.recover(60)
        assert [job.id for job in recovery.lost] == [ids["submitting"]]
        assert recovery.spread == 2  # each unfinished job is read once soon, in turn
        lost = await core.lifecycle.get_job(ids["submitting"])
        assert lost is not None and lost.state is JobState.LOST
        assert lost.failure_reason is not None and "returned" in lost.failure_reason
        queued = await core.lifecycle.get_job(ids["submitting_with_id"])
        assert queued is not None and queued.state is JobState.QUEUED
        # One read each, a second apart (60 reads a minute), not all at once.
        assert {job.id for job in await core.leases.reads_due(10)} == {ids["submitting_with_id"]}
        clock.advance(seconds=2)
        due = {job.id for job in await core.leases.reads_due(10)}
        assert due == {ids["submitting_with_id"], ids["queued"], ids["processing"]}
        assert [j.id for j in await core.leases.deliveries_due()] == [ids["succeeded"]]
        delivered = await core.lifecycle.get_job(ids["delivered"])
        assert delivered is not None and delivered.state is JobState.DELIVERED
        balance = await core.moderation.balance(GUILD, USER)
        # 2 committed (succeeded, delivered), 3 still held (with task ids), 1 released.
        assert (balance.used, balance.held) == (50, 30)
        again = await core.housekeeping.recover(60)  # a second recovery settles nothing more
        assert again.lost == []
        assert (await core.moderation.balance(GUILD, USER)).held == 30
    finally:
        await db.close()


async def test_history_and_status_visibility(core: Core) -> None:
    mine = await core.submitting.submit(request(duration=1))
    theirs = await core.submitting.submit(request(user=USER + 1, duration=1))
    assert [j.id for j in await core.lifecycle.history(GUILD, USER)] == [mine.id]
    assert (await core.lifecycle.status(mine.id, GUILD, USER, is_moderator=False)).id == mine.id
    with pytest.raises(Refusal) as caught:
        await core.lifecycle.status(theirs.id, GUILD, USER, is_moderator=False)
    assert caught.value.code == "not_found"
    assert (await core.lifecycle.status(theirs.id, GUILD, MOD, is_moderator=True)).id == theirs.id
    with pytest.raises(Refusal):
        await core.lifecycle.status(theirs.id, GUILD + 1, MOD, is_moderator=True)
    with pytest.raises(Refusal):
        await core.lifecycle.status(12345, GUILD, USER, is_moderator=True)


async def test_typical_price_follows_recent_jobs(core: Core) -> None:
    assert await core.moderation.typical_price(GUILD) == 30  # a default 5 s 720p video
    for duration in (1, 2, 10):
        job = await core.submitting.submit(request(duration=duration))
        await core.lifecycle.apply_result(job.id, result("FAILED"))
    assert await core.moderation.typical_price(GUILD) == 12  # median of 6, 12, 60


async def test_an_unknown_outcome_says_when_the_credits_come_back_and_never_blames_a_stop(
    core: Core, api: FakeAPI, clock: Clock
) -> None:
    from jobkit import outcome_unknown

    api.failures.append(outcome_unknown())
    waiting = await core.submitting.submit(request())
    # The deadline is kept on the job, so the card can say when the credits come back.
    assert waiting.next_poll_at == waiting.created_at + timedelta(seconds=90 + 60)
    assert waiting.failure_reason is not None and "held until" in waiting.failure_reason
    clock.advance(seconds=151)
    [lost] = await core.housekeeping.expire_overdue()
    assert lost.state is JobState.LOST and lost.failure_reason is not None
    assert (
        "never confirmed" in lost.failure_reason
        and "30 credits were returned" in lost.failure_reason
    )
    assert "stopped" not in lost.failure_reason  # the bot never stopped


async def test_recovery_says_the_bot_stopped_only_when_it_did(
    core: Core, api: FakeAPI, clock: Clock, db: Database
) -> None:
    from jobkit import outcome_unknown

    api.failures.append(outcome_unknown())
    unconfirmed = await core.submitting.submit(request())
    async with db.transaction() as store:  # cut off mid-submission by a stop
        cut_off = await store.insert_job(
            NewJob(
                guild_id=GUILD,
                channel_id=5,
                user_id=USER,
                model="vidu-q3-pro-i2v",
                params={"images": ["https://cdn.example/a.png"]},
                price=0,
            ),
            state=JobState.SUBMITTING,
            at=clock(),
        )
    recovery = await core.housekeeping.recover(60)
    reasons = {job.id: job.failure_reason or "" for job in recovery.lost}
    assert "never confirmed" in reasons[unconfirmed.id] and "stopped" not in reasons[unconfirmed.id]
    assert "The bot stopped" in reasons[cut_off.id]


async def test_a_state_change_stays_to_be_shown_until_the_member_has_seen_it(
    core: Core, clock: Clock
) -> None:
    job = await core.submitting.submit(request())
    assert job.state is JobState.QUEUED and job.card_stale  # not shown to anyone yet
    posted = await core.lifecycle.card_posted(job.id, 77, shows=JobState.QUEUED)
    assert not posted.card_stale  # the card was drawn in the state the job is in
    moved = await core.lifecycle.apply_result(job.id, result("PROCESSING", progress_percent=10))
    assert moved.card_stale
    again = await core.lifecycle.apply_result(job.id, result("PROCESSING", progress_percent=20))
    assert again.card_stale  # progress alone neither sets nor clears it
    # Shown as QUEUED only: that is not the state it is in, so it still needs showing.
    assert (await core.lifecycle.card_shown(job.id, JobState.QUEUED)).card_stale
    assert await core.leases.cards_to_show(older_than=10) == []  # too fresh to be orphaned
    clock.advance(seconds=11)
    assert [j.id for j in await core.leases.cards_to_show(older_than=10)] == [job.id]
    shown = await core.lifecycle.card_shown(job.id, JobState.PROCESSING)
    assert not shown.card_stale and await core.leases.cards_to_show(older_than=10) == []


async def test_give_up_times_go_with_the_end_of_a_job(
    core: Core, clock: Clock, db: Database
) -> None:
    job = await core.submitting.submit(request())
    assert job.give_up_at is not None
    done = await core.lifecycle.apply_result(job.id, result("SUCCEED"))
    assert done.give_up_at is None  # only a running job is given up
    # A finished job that kept one (written by something else) is cleared once found.
    async with db.transaction() as store:
        await store.update_job(job.id, clock.now, give_up_at=clock.now)
    clock.advance(seconds=1)
    assert await core.housekeeping.expire_overdue() == []
    async with db.read() as store:
        assert await store.jobs_to_give_up(clock.now, 10, "anyone") == []


async def test_a_start_gives_jobs_from_older_versions_their_give_up_time_once(
    core: Core, clock: Clock, db: Database
) -> None:
    older = await core.submitting.submit(request())
    async with db.transaction() as store:  # as a version before give-up times left it
        await store.update_job(older.id, clock.now, give_up_at=None)
    await core.housekeeping.recover(60)
    found = await core.lifecycle.get_job(older.id)
    assert found is not None
    assert found.give_up_at == found.created_at + core.lifecycle.timeout(found.off_peak)
    # Done once: later starts do not walk the running jobs for it again.
    assert await db.get_meta("give_up_times_backfilled") == "done"
    async with db.transaction() as store:
        await store.update_job(older.id, clock.now, give_up_at=None)
    await core.housekeeping.recover(60)
    again = await core.lifecycle.get_job(older.id)
    assert again is not None and again.give_up_at is None
