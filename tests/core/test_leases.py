"""Leases between processes (here: cores over one database, each its own process name): who
reads what, what a start catches up on, and whose cut-off submissions are given up."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from jobkit import FakeAPI, make_settings, request, result

from bot.core import Core
from storage import Database, JobState, NewJob
from tests.shared import Clock, eventually


def process(db: Database, clock: Clock, name: str) -> Core:
    """One bot process: its own core (its own owner id), the shared database."""
    return Core.build(
        db,
        FakeAPI(),
        make_settings(process_name=name, lease_seconds=30, default_max_concurrent_jobs=10),
        clock=clock,
    )


async def test_a_job_is_read_by_one_process_and_taken_over_when_it_dies(
    db: Database, clock: Clock
) -> None:
    first, second = process(db, clock, "shard-0"), process(db, clock, "shard-1")
    job = await first.submitting.submit(request())
    clock.advance(seconds=5)
    # The submitting process holds it; the other does not read it meanwhile...
    assert await second.leases.reads_due() == []
    assert [j.id for j in await first.leases.reads_due()] == [job.id]
    await first.lifecycle.apply_result(job.id, result("PROCESSING"))
    clock.advance(seconds=20)
    assert await second.leases.reads_due() == []
    # ...until the holder stops saying it is alive: then its lease runs out.
    clock.advance(seconds=30)
    assert [j.id for j in await second.leases.reads_due()] == [job.id]
    assert await first.leases.reads_due() == []  # it is the other's now


async def test_busy_work_keeps_its_lease_and_a_clean_stop_gives_it_up(
    db: Database, clock: Clock
) -> None:
    first, second = process(db, clock, "shard-0"), process(db, clock, "shard-1")
    job = await first.submitting.submit(request())
    clock.advance(seconds=5)
    await first.leases.start()
    assert [j.id for j in await first.leases.reads_due()] == [job.id]
    for _ in range(6):  # a long step: 60 s, renewed along the way
        clock.advance(seconds=10)
        await first.leases.keep_alive([job.id])
        assert await second.leases.reads_due() == []
    await first.leases.stop()
    assert [j.id for j in await second.leases.reads_due()] == [job.id]


async def test_a_start_catches_up_only_when_nobody_else_ran(db: Database, clock: Clock) -> None:
    first = process(db, clock, "shard-0")
    job = await first.submitting.submit(request())
    far = await first.lifecycle.apply_result(job.id, result("PROCESSING", eta=3000))
    assert far.next_poll_at is not None and far.next_poll_at > clock.now + timedelta(seconds=50)
    await first.leases.start()
    # shard-1 starts while shard-0 runs: shard-0 kept the jobs going, nothing to catch up.
    second = process(db, clock, "shard-1")
    assert (await second.housekeeping.recover(60)).spread == 0
    # shard-0 dies and starts again while shard-1 runs: still nothing.
    again = process(db, clock, "shard-0")
    assert (await again.housekeeping.recover(60)).spread == 0
    # Everything stopped for a while: the first process back reads every unfinished job soon
    # (a start of its own name does not count its earlier life as running).
    clock.advance(seconds=40)
    back = process(db, clock, "shard-0")
    assert (await back.housekeeping.recover(60)).spread == 1


async def test_a_submission_another_process_still_waits_for_is_not_given_up(
    db: Database, clock: Clock
) -> None:
    first = process(db, clock, "shard-0")
    api = FakeAPI()
    api.delay = 0.2
    slow = Core.build(db, api, make_settings(process_name="shard-1"), clock=clock)
    waiting = asyncio.create_task(slow.submitting.submit(request()))
    await asyncio.sleep(0.05)  # its row exists, its API call runs in shard-1
    recovery = await first.housekeeping.recover(60)
    assert recovery.lost == []
    job = await waiting
    assert job.state is JobState.QUEUED
    # A submission cut off in a process that died is given up once its lease runs out (or
    # by the process itself starting again).
    clock.advance(seconds=10)
    await slow.leases.start()
    cut = await db_cut_off(db, clock)
    recovery = await process(db, clock, "shard-1").housekeeping.recover(60)
    assert [j.id for j in recovery.lost] == [cut]


async def test_a_submission_waiting_past_its_give_up_time_in_a_live_process_is_not_lost(
    db: Database, clock: Clock
) -> None:
    # Behind the shared budget or its own retries, a submission can wait longer than its
    # give-up time; its process is alive and renewing. Another process must not give it up
    # (its credits returned while the service makes, and bills, the video anyway).
    watcher = process(db, clock, "shard-0")
    api = FakeAPI()
    api.hold = asyncio.Event()
    waiting_in = Core.build(db, api, make_settings(process_name="shard-1"), clock=clock)
    waiting = asyncio.create_task(waiting_in.submitting.submit(request()))
    await eventually(lambda: asyncio.sleep(0, bool(api.calls)))  # its call waits in shard-1
    for _ in range(20):  # 200 s: well past the 150 s its lease and give-up time began with
        clock.advance(seconds=10)
        await waiting_in.leases.keep_alive([])
        assert await watcher.housekeeping.expire_overdue() == []
    api.hold.set()
    job = await waiting
    assert job.state is JobState.QUEUED and job.task_id == "task-1"
    # Had its process died, it would be given up once the lease ran out, as before.
    cut = await db_cut_off(db, clock)
    clock.advance(minutes=3)
    assert [j.id for j in await watcher.housekeeping.expire_overdue()] == [cut]


async def db_cut_off(db: Database, clock: Clock) -> int:
    """A SUBMITTING job without a task id, leased to a shard-1 life that is gone."""
    async with db.transaction() as store:
        job = await store.insert_job(
            NewJob(
                guild_id=1,
                channel_id=5,
                user_id=10,
                model="vidu-q3-pro-i2v",
                params={},
                price=0,
                lease_owner="shard-1/dead",
                lease_until=clock.now + timedelta(minutes=2),
                give_up_at=clock.now + timedelta(minutes=2),
            ),
            state=JobState.SUBMITTING,
            at=clock.now,
        )
        await store.add_ledger(
            guild_id=1,
            user_id=10,
            job_id=job.id,
            kind="hold",
            pool="period",
            amount=0,
            actor="system",
            at=clock.now,
        )
    return job.id
