"""What the bot learns of how long jobs take, which reads go first when the read budget is
short, and how a start spreads the backlog's reads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from jobkit import request, result

from bot.core import Core
from bot.core.durations import ENOUGH, KEEP, Durations, bucket_of, interval, service_seconds
from bot.core.schedule import Learned
from storage import Database, Job
from tests.shared import Clock

BUCKET = bucket_of("vidu-q3-pro-i2v", "720p", False, 5)


def test_the_interval_holds_most_durations_a_little_widened() -> None:
    learned = interval([50.0 + n for n in range(20)])  # 50 … 69 s
    assert 45 < learned.low < 51 and 68 < learned.high < 73
    assert learned.typical == pytest.approx(59.5)


def test_the_service_time_comes_from_debug_info_when_plausible() -> None:
    info = {"debug_info": {"submit_time_ms": 1_000, "complete_time_ms": 41_000}}
    assert service_seconds(info, fallback=45.0) == 40.0
    assert service_seconds({}, fallback=45.0) == 45.0
    broken = {"debug_info": {"submit_time_ms": 1_000, "complete_time_ms": 999_000}}
    assert service_seconds(broken, fallback=45.0) == 45.0  # longer than the bot waited: no
    assert service_seconds({"debug_info": {"submit_time_ms": "x"}}, fallback=7.0) == 7.0


async def learn(db: Database, clock: Clock, bucket: str, *seconds: float) -> None:
    async with db.transaction() as store:
        for value in seconds:
            await store.learn_duration(bucket, value, KEEP, clock.now)


def queued_job(clock: Clock) -> Job:
    """A queued job of the kind BUCKET names, as the store hands it over."""
    return Job.model_validate(
        {
            "id": 1,
            "guild_id": 1,
            "channel_id": 1,
            "user_id": 1,
            "model": "vidu-q3-pro-i2v",
            "params": {},
            "price": 1,
            "state": "QUEUED",
            "bucket": BUCKET,
            "created_at": clock.now,
            "updated_at": clock.now,
        }
    )


async def test_a_kind_is_learned_from_its_own_jobs_or_borrowed_from_its_siblings(
    db: Database, clock: Clock
) -> None:
    job = queued_job(clock)
    ticks = [0.0]
    durations = Durations(db, clock=lambda: ticks[0])
    assert await durations.learned(job) is None  # nothing learned yet
    # Jobs of 10 s took 20 s each: a 5 s job borrows 2 s of making per second of video.
    await learn(db, clock, bucket_of("vidu-q3-pro-i2v", "720p", False, 10), *[20.0] * ENOUGH)
    assert await durations.learned(job) is None  # asked moments ago: the answer is kept
    ticks[0] = 60.0
    borrowed = await durations.learned(job)
    assert borrowed is not None and borrowed.typical == pytest.approx(10.0)
    # Its own kind, once there are enough, wins.
    await learn(db, clock, BUCKET, *[30.0] * ENOUGH)
    ticks[0] = 120.0
    own = await durations.learned(job)
    assert own is not None and own.typical == pytest.approx(30.0)
    # Only the newest KEEP are kept, whatever the history.
    await learn(db, clock, BUCKET, *[40.0] * (KEEP + 10))
    async with db.read() as store:
        samples = await store.learned_samples(BUCKET, BUCKET + "~")
    assert samples[BUCKET] == [40.0] * KEEP


async def test_a_success_teaches_how_long_its_kind_took(core: Core, clock: Clock) -> None:
    job = await core.submitting.submit(request())
    assert job.bucket == BUCKET
    clock.advance(seconds=42)
    await core.lifecycle.apply_result(job.id, result("SUCCEED"))
    async with core.lifecycle._books.db.read() as store:
        assert (await store.learned_samples(BUCKET, BUCKET + "~"))[BUCKET] == [42.0]


async def test_when_reads_are_short_the_likeliest_to_be_done_go_first(
    make_core: Callable[..., Core], clock: Clock
) -> None:
    core = make_core(default_max_concurrent_jobs=10, default_allowance=1000)
    learned = Learned(low=30, typical=45, high=60)
    early = await core.submitting.submit(request())
    likely = await core.submitting.submit(request())
    clock.advance(seconds=3)
    # `early` is read long before its kind usually ends (a routine read); `likely` has an
    # eta that agrees with what was learned and ends now.
    await core.lifecycle.apply_result(early.id, result("PROCESSING"))
    await core.lifecycle.apply_result(likely.id, result("PROCESSING", eta=40), learned)
    clock.advance(seconds=60)
    due = await core.leases.reads_due(limit=1)
    assert [job.id for job in due] == [likely.id]
    assert [job.id for job in await core.leases.reads_due(limit=5)] == [likely.id, early.id]


async def test_a_start_spreads_the_backlog_and_a_new_job_keeps_its_own_schedule(
    make_core: Callable[..., Core], clock: Clock
) -> None:
    core = make_core(default_max_concurrent_jobs=50, default_allowance=100_000)
    backlog = [await core.submitting.submit(request()) for _ in range(30)]
    for n, job in enumerate(backlog):
        # Half are read far ahead; half were due long before the start (the bot was down).
        eta = 3000 if n % 2 else 5
        await core.lifecycle.apply_result(job.id, result("PROCESSING", eta=eta))
    clock.advance(minutes=10)
    restarted = make_core(default_max_concurrent_jobs=50, default_allowance=100_000)
    recovery = await restarted.housekeeping.recover(reads_per_minute=60)
    assert recovery.spread == 30
    # One read a second (60 a minute), in the order the jobs came, starting now.
    reads = sorted(
        (
            job.next_poll_at
            for job in [await restarted.lifecycle.get_job(j.id) for j in backlog]
            if job is not None and job.next_poll_at is not None
        ),
    )
    assert reads[0] == clock.now and reads[-1] == clock.now + timedelta(seconds=29)
    # A job submitted right after the start is read at its own first read, not after the 30.
    fresh = await restarted.submitting.submit(request())
    assert fresh.next_poll_at == clock.now + timedelta(seconds=3)
    clock.advance(seconds=3)
    due = [job.id for job in await restarted.leases.reads_due(limit=10)]
    assert fresh.id in due and len(due) == 5  # 4 of the backlog (0–3 s) and the new one


async def test_a_model_seen_only_at_other_resolutions_lends_its_rate(
    db: Database, clock: Clock
) -> None:
    job = queued_job(clock)  # 720p, 5 s
    # Only 1080p jobs of 8 s seen (40 s each: 5 s of making per second of video).
    await learn(db, clock, bucket_of("vidu-q3-pro-i2v", "1080p", False, 8), *[40.0] * ENOUGH)
    # Another model's jobs lend nothing.
    await learn(db, clock, bucket_of("vidu-q3-turbo-i2v", "720p", False, 5), *[9.0] * ENOUGH)
    learned = await Durations(db).learned(job)
    assert learned is not None and learned.typical == pytest.approx(25.0)
