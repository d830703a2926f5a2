"""Leases on both backends: a claimed job is nobody else's until its lease runs out, claims
running at once take different jobs, and processes say they are alive."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from storage import Database, JobState, NewJob
from tests.backends import Backend

LEASE = timedelta(seconds=30)
ME = "bot/1"  # the process asking


def new_job(**extra: object) -> NewJob:
    fields: dict[str, object] = {
        "guild_id": 1,
        "channel_id": 5,
        "user_id": 10,
        "model": "vidu-q3-pro-i2v",
        "params": {"prompt": "a cat"},
        "price": 30,
    }
    fields.update(extra)
    return NewJob.model_validate(fields)


async def due_jobs(db: Database, t0: datetime, count: int) -> list[int]:
    ids = []
    async with db.transaction() as store:
        for n in range(count):
            job = await store.insert_job(new_job(), state=JobState.SUBMITTING, at=t0)
            await store.update_job(
                job.id, t0, state=JobState.QUEUED, task_id=f"t{n}", next_poll_at=t0
            )
            ids.append(job.id)
    return ids


async def claim(db: Database, owner: str, now: datetime, limit: int = 50) -> list[int]:
    async with db.transaction() as store:
        return [job.id for job in await store.claim_reads(owner, now, now + LEASE, limit)]


async def test_a_claimed_job_is_nobody_elses_until_its_lease_runs_out(
    db: Database, t0: datetime
) -> None:
    ids = await due_jobs(db, t0, 3)
    assert await claim(db, "a/1", t0, limit=2) == ids[:2]
    assert await claim(db, "b/1", t0) == ids[2:]  # only what a/1 does not hold
    assert await claim(db, "a/1", t0) == ids[:2]  # a lease stays with its holder
    # a/1 dies: its jobs come free when the lease runs out, not before.
    assert await claim(db, "b/1", t0 + LEASE - timedelta(seconds=1)) == ids[2:]
    assert await claim(db, "b/1", t0 + LEASE) == ids
    # Renewed leases hold on; a clean stop gives them up at once.
    async with db.transaction() as store:
        assert await store.renew_leases("b/1", ids[:1], t0 + 3 * LEASE) == 1
        assert await store.renew_leases("a/1", ids, t0 + 3 * LEASE) == 0  # not a/1's now
        assert await store.count_leases("b/1", t0 + 2 * LEASE) == 1
    assert await claim(db, "a/1", t0 + 2 * LEASE) == ids[1:]
    async with db.transaction() as store:
        assert await store.release_leases("b/1") == 1
    assert await claim(db, "a/1", t0 + 2 * LEASE) == ids


async def test_a_process_started_again_takes_back_what_its_earlier_life_held(
    db: Database, t0: datetime
) -> None:
    ids = await due_jobs(db, t0, 2)
    assert await claim(db, "shard-0/old", t0, limit=1) == ids[:1]
    assert await claim(db, "shard-00/x", t0) == ids[1:]
    async with db.transaction() as store:
        # Only shard-0's own earlier life, not one whose name starts the same ("shard-00").
        assert await store.release_earlier_leases("shard-0", "shard-0/new") == 1
    assert await claim(db, "shard-0/new", t0) == ids[:1]


async def test_submissions_still_waited_for_are_known(db: Database, t0: datetime) -> None:
    async with db.transaction() as store:
        waited = await store.insert_job(
            new_job(lease_owner="a/1", lease_until=t0 + LEASE), state=JobState.SUBMITTING, at=t0
        )
        await store.insert_job(
            new_job(lease_owner="b/1", lease_until=t0), state=JobState.SUBMITTING, at=t0
        )
        await store.insert_job(new_job(), state=JobState.SUBMITTING, at=t0)
        assert await store.leased_submissions(t0, other_than="c/1") == {waited.id}
        assert await store.leased_submissions(t0, other_than="a/1") == set()  # its own


async def test_processes_say_they_are_alive(db: Database, t0: datetime) -> None:
    async with db.transaction() as store:
        await store.process_seen("a/1", t0)
        await store.process_seen("b/1", t0 - timedelta(minutes=5))
        await store.process_seen("c/1", t0 - timedelta(days=2))
        assert await store.processes_alive(t0 - LEASE, forget_before=t0 - timedelta(days=1)) == [
            "a/1"
        ]
        assert await store.processes_alive(
            t0 - timedelta(hours=1), forget_before=t0 - timedelta(days=1)
        ) == ["a/1", "b/1"]
        await store.process_gone("a/1")
        assert await store.processes_alive(t0 - LEASE, forget_before=t0) == []
        # A process started again forgets its earlier lives, not a namesake's.
        await store.process_seen("shard-1/old", t0)
        await store.process_seen("shard-10/x", t0)
        await store.earlier_lives_gone("shard-1", "shard-1/new")
        assert await store.processes_alive(t0, forget_before=t0) == ["shard-10/x"]


async def test_claims_at_the_same_moment_take_different_jobs(
    backend: Backend, t0: datetime
) -> None:
    """Many claimers on their own connections at once: every job is claimed exactly once
    (PostgreSQL skips rows another claim has locked; SQLite claims one at a time)."""
    db = await backend.open()
    ids = await due_jobs(db, t0, 60)
    others = [await backend.open() for _ in range(3)] if backend.name == "postgres" else [db]

    async def claimer(n: int) -> list[int]:
        return await claim(others[n % len(others)], f"p{n}/1", t0, limit=10)

    claimed = await asyncio.gather(*(claimer(n) for n in range(6)))
    every = [job_id for got in claimed for job_id in got]
    assert sorted(every) == ids  # all claimed, none twice
    assert all(len(got) == 10 for got in claimed)  # none waited out or went short


async def test_the_next_read_still_to_come(db: Database, t0: datetime) -> None:
    async with db.transaction() as store:
        assert await store.next_read_at(t0, ME) is None
    ids = await due_jobs(db, t0, 3)
    async with db.transaction() as store:
        await store.update_job(ids[1], t0, next_poll_at=t0 + timedelta(seconds=7))
        await store.update_job(ids[2], t0, next_poll_at=t0 + timedelta(seconds=3))
        # Reads already due (ids[0], at t0) are the tick's business, not the next wake's.
        assert await store.next_read_at(t0, ME) == t0 + timedelta(seconds=3)
        # Another live process holds that one: its read is not this process's to wake for.
        await store.update_job(
            ids[2], t0, lease_owner="other/1", lease_until=t0 + timedelta(seconds=30)
        )
        assert await store.next_read_at(t0, ME) == t0 + timedelta(seconds=7)
        assert await store.next_read_at(t0, "other/1") == t0 + timedelta(seconds=3)
        await store.update_job(ids[2], t0, state=JobState.DELIVERED)
        assert await store.next_read_at(t0, "other/1") == t0 + timedelta(seconds=7)
