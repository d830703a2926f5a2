"""The store: transactions, typed round trips, the append-only ledger and its sums, on
both backends (the `db` fixture runs each test on SQLite and on PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from storage import (
    Database,
    GuildDefaults,
    InputRef,
    JobState,
    MemberQuota,
    NewJob,
    ReadOnlyStoreError,
    Store,
)
from tests.backends import INTEGRITY_ERRORS

DEFAULTS = GuildDefaults(allowance=100, period="week", max_concurrent=2)

ME = "bot/1"  # the process claiming
LEASE = timedelta(seconds=30)


def new_job(guild: int = 1, user: int = 10, price: int = 30, **extra: object) -> NewJob:
    fields: dict[str, object] = {
        "guild_id": guild,
        "channel_id": 5,
        "user_id": user,
        "model": "vidu-q3-pro-i2v",
        "params": {"images": ["https://cdn.example/a.png"], "prompt": "a cat", "duration": 5},
        "price": price,
    }
    fields.update(extra)
    return NewJob.model_validate(fields)


async def hold(store: Store, job_id: int, amount: int, at: datetime, pool: str = "period") -> None:
    await store.add_ledger(
        guild_id=1,
        user_id=10,
        job_id=job_id,
        kind="hold",
        pool=pool,  # type: ignore[arg-type]
        amount=amount,
        actor="system",
        at=at,
    )


# --- transactions ---------------------------------------------------------------------


# PostgreSQL only: on SQLite transactions are serial, so named locks take nothing.
@pytest.mark.parametrize("backend_name", ["postgres"])
async def test_shared_named_locks_wait_only_for_a_whole_one(db: Database) -> None:
    order: list[str] = []
    both_in, release = asyncio.Event(), asyncio.Event()

    async def sharer(name: str, member: str) -> None:
        async with db.transaction() as store:
            await store.lock(member, shared=["guild:1"])
            order.append(f"{name} in")
            if len(order) == 2:
                both_in.set()  # the second got in while the first held it: shared
            await release.wait()
        order.append(f"{name} out")

    async def whole() -> None:
        await both_in.wait()
        async with db.transaction() as store:
            await store.lock("guild:1")
            order.append("whole in")
            assert release.is_set()  # in only once the sharers were let go

    tasks = [
        asyncio.create_task(sharer("first", "member:1")),
        asyncio.create_task(sharer("second", "member:2")),
        asyncio.create_task(whole()),
    ]
    await asyncio.wait_for(both_in.wait(), 5)
    await asyncio.sleep(0.3)
    assert order == ["first in", "second in"]  # the whole one waits for both sharers
    release.set()
    await asyncio.gather(*tasks)
    assert sorted(order[2:]) == ["first out", "second out", "whole in"]


async def test_a_transaction_commits_at_the_end_and_rolls_back_on_error(db: Database) -> None:
    async with db.transaction() as store:
        await store.set_meta("kept", "1")
    with pytest.raises(ZeroDivisionError):
        async with db.transaction() as store:
            await store.set_meta("dropped", "1")
            _ = 1 / 0
    assert await db.get_meta("kept") == "1"
    assert await db.get_meta("dropped") is None


async def test_a_cancelled_transaction_rolls_back(db: Database) -> None:
    started = asyncio.Event()

    async def slow_writer() -> None:
        async with db.transaction() as store:
            await store.set_meta("half", "1")
            started.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(slow_writer())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await db.get_meta("half") is None
    await db.set_meta("after", "ok")  # the connection is usable again
    assert await db.get_meta("after") == "ok"


async def test_interleaved_coroutines_never_share_a_transaction(db: Database) -> None:
    """A's transaction awaits in the middle; B's write must not land inside A's (A fails)."""
    a_inside = asyncio.Event()

    async def a() -> None:
        async with db.transaction() as store:
            await store.set_meta("a", "1")
            a_inside.set()
            await asyncio.sleep(0.05)  # B gets the loop here
            raise RuntimeError("A fails")

    async def b() -> None:
        await a_inside.wait()
        async with db.transaction() as store:
            await store.set_meta("b", "1")

    results = await asyncio.gather(a(), b(), return_exceptions=True)
    assert isinstance(results[0], RuntimeError)
    assert results[1] is None
    assert await db.get_meta("a") is None
    assert await db.get_meta("b") == "1"


async def test_nested_transactions_in_one_task_fail_loudly(db: Database) -> None:
    async with db.transaction():
        with pytest.raises(RuntimeError, match="nested"):
            async with db.transaction():
                pass


async def test_a_read_store_refuses_writes(db: Database) -> None:
    async with db.read() as store:
        with pytest.raises(ReadOnlyStoreError):
            await store.set_meta("x", "y")


async def test_a_closed_database_says_so(db: Database) -> None:
    await db.close()
    with pytest.raises(Exception, match="closed"):
        await db.get_meta("x")


# --- jobs -----------------------------------------------------------------------------


async def test_a_job_round_trips_with_inputs_params_and_utc_times(
    db: Database, t0: datetime
) -> None:
    ref = InputRef(
        kind="image",
        url="https://cdn.example/a.png",
        filename="a.png",
        content_type="image/png",
        size=1234,
        width=640,
        height=480,
        attachment_id=99,
    )
    async with db.transaction() as store:
        job = await store.insert_job(new_job(inputs=[ref]), state=JobState.SUBMITTING, at=t0)
    assert job.id >= 1
    assert job.state is JobState.SUBMITTING
    assert job.inputs == [ref]
    assert job.params["prompt"] == "a cat"
    assert job.created_at == t0 and job.created_at.tzinfo is not None
    async with db.transaction() as store:
        later = t0 + timedelta(seconds=90)
        updated = await store.update_job(
            job.id,
            later,
            state=JobState.QUEUED,
            task_id="task-1",
            next_poll_at=later + timedelta(seconds=3),
        )
    assert updated.state is JobState.QUEUED
    assert updated.task_id == "task-1"
    assert updated.updated_at == later
    assert updated.next_poll_at == later + timedelta(seconds=3)
    assert updated.created_at == t0


async def test_update_job_refuses_fixed_columns_and_missing_jobs(
    db: Database, t0: datetime
) -> None:
    async with db.transaction() as store:
        job = await store.insert_job(new_job(), state=JobState.SUBMITTING, at=t0)
        with pytest.raises(ValueError, match="cannot be changed"):
            await store.update_job(job.id, t0, price=0)
        with pytest.raises(LookupError):
            await store.update_job(job.id + 100, t0, progress=5)


async def test_jobs_are_counted_by_state_every_state_listed(db: Database, t0: datetime) -> None:
    async with db.read() as store:
        assert await store.count_jobs_by_state() == dict.fromkeys(JobState, 0)
    async with db.transaction() as store:
        for _ in range(3):
            await store.insert_job(new_job(), state=JobState.SUBMITTING, at=t0)
        done = await store.insert_job(new_job(user=11), state=JobState.SUBMITTING, at=t0)
        await store.update_job(done.id, t0, state=JobState.QUEUED, task_id="t1")
        await store.update_job(done.id, t0, state=JobState.DELIVERED)
        await store.insert_job(new_job(guild=2), state=JobState.REJECTED, at=t0)
    async with db.read() as store:
        counts = await store.count_jobs_by_state()
    assert list(counts) == list(JobState)
    assert {state: n for state, n in counts.items() if n} == {
        JobState.SUBMITTING: 3,
        JobState.DELIVERED: 1,
        JobState.REJECTED: 1,
    }


async def test_naive_datetimes_are_refused(db: Database) -> None:
    async with db.transaction() as store:
        with pytest.raises(ValueError, match="naive"):
            await store.insert_job(new_job(), state=JobState.SUBMITTING, at=datetime(2025, 1, 1))


async def test_times_from_other_zones_are_stored_as_utc(db: Database) -> None:
    from datetime import timezone

    east = datetime(2025, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    async with db.transaction() as store:
        job = await store.insert_job(new_job(), state=JobState.SUBMITTING, at=east)
    assert job.created_at == datetime(2025, 1, 1, 0, 0, tzinfo=UTC)
    assert job.created_at.utcoffset() == timedelta(0)


async def test_due_and_active_queries(db: Database, t0: datetime) -> None:
    async with db.transaction() as store:
        a = await store.insert_job(new_job(), state=JobState.SUBMITTING, at=t0)
        b = await store.insert_job(new_job(), state=JobState.SUBMITTING, at=t0)
        c = await store.insert_job(new_job(user=11), state=JobState.SUBMITTING, at=t0)
        await store.update_job(a.id, t0, state=JobState.QUEUED, task_id="ta", next_poll_at=t0)
        await store.update_job(
            b.id, t0, state=JobState.QUEUED, task_id="tb", next_poll_at=t0 + timedelta(hours=1)
        )
        await store.update_job(c.id, t0, state=JobState.SUCCEEDED, task_id="tc", next_poll_at=t0)
        assert [j.id for j in await store.claim_reads(ME, t0, t0 + LEASE, 10)] == [a.id]
        # A finished video waits for its card: it is posted as a reply to it.
        assert await store.claim_deliveries(ME, t0, t0 + LEASE, 10) == []
        assert [
            j.id
            for j in await store.claim_pending_cards(
                ME, t0 + timedelta(seconds=1), t0, t0 + LEASE, 10
            )
        ] == [
            a.id,
            b.id,
            c.id,
        ]
        await store.update_job(c.id, t0, card_state="posted", card_message_id=99)
        assert [j.id for j in await store.claim_deliveries(ME, t0, t0 + LEASE, 10)] == [c.id]
        assert c.id not in [
            j.id
            for j in await store.claim_pending_cards(
                ME, t0 + timedelta(seconds=1), t0, t0 + LEASE, 10
            )
        ]
        assert await store.count_active_jobs(1, 10) == 2
        assert await store.count_active_jobs(1, 11) == 0
        assert [j.id for j in await store.member_jobs(1, 10, 10)] == [b.id, a.id]


async def test_finished_videos_never_scheduled_are_delivered_first(
    db: Database, t0: datetime
) -> None:
    """NULL sorts first in both dialects (PostgreSQL puts it last unless told)."""
    async with db.transaction() as store:
        a = await store.insert_job(new_job(card_state="none"), state=JobState.SUBMITTING, at=t0)
        b = await store.insert_job(new_job(card_state="none"), state=JobState.SUBMITTING, at=t0)
        await store.update_job(
            a.id, t0, state=JobState.SUCCEEDED, task_id="ta", next_poll_at=t0 - timedelta(hours=1)
        )
        await store.update_job(b.id, t0, state=JobState.SUCCEEDED, task_id="tb")
        assert [j.id for j in await store.claim_deliveries(ME, t0, t0 + LEASE, 10)] == [b.id, a.id]


async def test_task_ids_are_unique(db: Database, t0: datetime) -> None:
    async with db.transaction() as store:
        a = await store.insert_job(new_job(), state=JobState.SUBMITTING, at=t0)
        b = await store.insert_job(new_job(), state=JobState.SUBMITTING, at=t0)
        await store.update_job(a.id, t0, task_id="same")
        with pytest.raises(INTEGRITY_ERRORS):
            await store.update_job(b.id, t0, task_id="same")


# --- ledger ---------------------------------------------------------------------------


async def test_the_ledger_is_append_only(db: Database, t0: datetime) -> None:
    async with db.transaction() as store:
        await store.add_ledger(
            guild_id=1, user_id=10, kind="grant", amount=5, actor="42", reason="gift", at=t0
        )
    for statement in ("UPDATE ledger SET amount = 500", "DELETE FROM ledger"):
        with pytest.raises(INTEGRITY_ERRORS, match="append-only"):
            async with db.transaction() as store:
                await store._write(statement)
    async with db.read() as store:
        [entry] = await store.ledger_entries(1, 10)
    assert (entry.kind, entry.amount, entry.actor, entry.reason) == ("grant", 5, "42", "gift")


async def test_a_hold_is_settled_once_and_mirrored_per_pool(db: Database, t0: datetime) -> None:
    async with db.transaction() as store:
        job = await store.insert_job(new_job(price=30), state=JobState.SUBMITTING, at=t0)
        await hold(store, job.id, 20, t0, "period")
        await hold(store, job.id, 10, t0, "bonus")
        first = await store.settle_holds(job.id, "commit", actor="system", reason="ok", at=t0)
        second = await store.settle_holds(job.id, "release", actor="system", reason="no", at=t0)
        assert sorted((e.pool, e.amount, e.kind) for e in first) == [
            ("bonus", 10, "commit"),
            ("period", 20, "commit"),
        ]
        assert second == []
    # Each refusal in a transaction of its own: after an error PostgreSQL takes no more
    # statements in that transaction (SQLite would), and the guarantee is the same.
    with pytest.raises(INTEGRITY_ERRORS):  # the database itself refuses a second settlement
        async with db.transaction() as store:
            await store.add_ledger(
                guild_id=1,
                user_id=10,
                job_id=job.id,
                kind="release",
                pool="period",
                amount=20,
                actor="system",
                at=t0,
            )
    with pytest.raises(INTEGRITY_ERRORS):  # and a second hold of the same pool
        async with db.transaction() as store:
            await hold(store, job.id, 1, t0, "period")
    async with db.read() as store:
        assert len(await store.job_ledger(job.id)) == 4


async def test_member_usage_sums_by_pool_period_and_settlement(db: Database, t0: datetime) -> None:
    before = t0 - timedelta(days=10)
    async with db.transaction() as store:
        jobs = [
            await store.insert_job(new_job(), state=JobState.SUBMITTING, at=t0) for _ in range(5)
        ]
        await hold(store, jobs[0].id, 7, before)  # an earlier period, committed
        await store.settle_holds(jobs[0].id, "commit", actor="system", reason="", at=t0)
        await hold(store, jobs[1].id, 11, t0)  # held
        await hold(store, jobs[2].id, 13, t0)  # committed
        await store.settle_holds(jobs[2].id, "commit", actor="system", reason="", at=t0)
        await hold(store, jobs[3].id, 17, t0)  # released
        await store.settle_holds(jobs[3].id, "release", actor="system", reason="", at=t0)
        await hold(store, jobs[4].id, 3, t0, "bonus")
        await store.add_ledger(
            guild_id=1, user_id=10, kind="grant", amount=9, actor="42", at=before
        )
        await store.add_ledger(guild_id=1, user_id=10, kind="reset", amount=4, actor="42", at=t0)
        await store.add_ledger(
            guild_id=1, user_id=10, kind="reset", amount=100, actor="42", at=before
        )
        usage = await store.member_usage(1, 10, since=t0 - timedelta(days=1))
        everything = await store.member_usage(1, 10, since=None)
        other = await store.member_usage(1, 11, since=None)
        spent_today = await store.spent_since(t0 - timedelta(hours=1))
        spent_guild = await store.spent_since(t0 - timedelta(hours=1), guild_id=2)
    assert usage.period_held == 11
    assert usage.period_committed == 13
    # The reset excuses what was committed before it by holds placed in the window: job 2.
    assert usage.period_reset == 13
    assert usage.bonus_granted == 9
    assert usage.bonus_held == 3
    assert usage.bonus_committed == 0
    assert everything.period_committed == 20
    # Over all time the latest reset row (by id) comes after both commits: it excuses both.
    assert everything.period_reset == 20
    assert other.period_held == other.bonus_granted == 0
    assert spent_today == 11 + 13 + 3  # released holds and earlier days do not count
    assert spent_guild == 0


async def test_ledger_pages_newest_first(db: Database, t0: datetime) -> None:
    async with db.transaction() as store:
        for n in range(23):
            await store.add_ledger(
                guild_id=1,
                user_id=10 if n % 2 else 11,
                kind="grant",
                amount=n + 1,
                actor="42",
                at=t0 + timedelta(seconds=n),
            )
        await store.add_ledger(guild_id=2, user_id=10, kind="grant", amount=1, actor="1", at=t0)
    async with db.read() as store:
        first = await store.ledger_page(1, None, 0, 10)
        last = await store.ledger_page(1, None, 2, 10)
        beyond = await store.ledger_page(1, None, 9, 10)
        member = await store.ledger_page(1, 10, 0, 5)
        empty = await store.ledger_page(3, None, 0, 10)
    assert (first.page, first.pages, first.total) == (0, 3, 23)
    assert [e.amount for e in first.entries] == list(range(23, 13, -1))
    assert [e.amount for e in last.entries] == [3, 2, 1]
    assert beyond.page == 2 and beyond.entries == last.entries
    assert member.total == 11 and all(e.user_id == 10 for e in member.entries)
    assert (empty.page, empty.pages, empty.entries) == (0, 1, [])


async def test_ledger_rows_need_a_job_and_pool_exactly_for_holds(
    db: Database, t0: datetime
) -> None:
    with pytest.raises(INTEGRITY_ERRORS):
        async with db.transaction() as store:
            await store.add_ledger(
                guild_id=1, user_id=10, kind="hold", amount=1, actor="system", at=t0
            )
    with pytest.raises(INTEGRITY_ERRORS):  # foreign key to jobs
        async with db.transaction() as store:
            await hold(store, 12345, 1, t0)


# --- settings -------------------------------------------------------------------------


async def test_guild_settings_default_then_partial_updates(db: Database, t0: datetime) -> None:
    async with db.transaction() as store:
        fresh = await store.guild_settings(7, DEFAULTS)
        assert (fresh.allowance, fresh.period, fresh.max_concurrent) == (100, "week", 2)
        assert fresh.allowed_channels == [] and fresh.enabled_models is None
        await store.update_guild_settings(7, t0, allowed_channels=[3, 1, 3], daily_cap=500)
        await store.update_guild_settings(7, t0, enabled_models=["vidu-q3-pro-i2v"])
        changed = await store.guild_settings(7, DEFAULTS)
        assert changed.allowed_channels == [1, 3]
        assert changed.daily_cap == 500
        assert changed.enabled_models == ["vidu-q3-pro-i2v"]
        # Never set: still follows the operator's default when it changes.
        moved = await store.guild_settings(
            7, GuildDefaults(allowance=5, period="day", max_concurrent=4)
        )
        assert (moved.allowance, moved.period, moved.max_concurrent) == (5, "day", 4)
        await store.update_guild_settings(7, t0, allowance=50, period="month", daily_cap=None)
        final = await store.guild_settings(7, DEFAULTS)
        assert (final.allowance, final.period, final.daily_cap) == (50, "month", None)
        assert final.allowed_channels == [1, 3]


async def test_member_quota_round_trip(db: Database, t0: datetime) -> None:
    async with db.transaction() as store:
        assert await store.member_quota(1, 10) == MemberQuota(guild_id=1, user_id=10)
        await store.save_member_quota(
            MemberQuota(guild_id=1, user_id=10, allowance=None, unlimited=True, blocked=True), t0
        )
        quota = await store.member_quota(1, 10)
    assert quota.unlimited and quota.blocked and quota.allowance is None


async def test_meta_values(db: Database) -> None:
    assert await db.get_meta("command-tree") is None
    await db.set_meta("command-tree", "h1")
    await db.set_meta("command-tree", "h2")
    assert await db.get_meta("command-tree") == "h2"
