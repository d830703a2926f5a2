"""Housekeeping: what a stop left behind, and jobs that will never finish.

Both walk the jobs in small batches, by index, so their cost follows what there is to do,
never the size of the history: recovery reads only the jobs it must change, and the give-up
check each tick finds overdue jobs through `give_up_at`, not by scanning every active job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.books import Books
from bot.core.leases import Leases
from bot.core.lifecycle import Lifecycle
from bot.core.moves import Decide, Move, credits, lose, span
from storage import Job, JobState

log = logging.getLogger(__name__)

BATCH = 200  # jobs per transaction while walking a backlog
GIVE_UP_BATCH = 100  # jobs given up per tick at most (the rest the next tick)
MAINTAIN_EVERY = timedelta(hours=1)  # the database's upkeep (planner statistics)
# Noted in the database once jobs from before give-up times have theirs.
GIVE_UP_BACKFILLED = "give_up_times_backfilled"


@dataclass(frozen=True, slots=True)
class Recovery:
    """What `recover` did: jobs it settled as LOST (their members should hear so), and how
    many reads it moved into the spread."""

    lost: list[Job]
    spread: int


class Housekeeping:
    def __init__(self, books: Books, lifecycle: Lifecycle, leases: Leases) -> None:
        self._books = books
        self._lifecycle = lifecycle
        self._leases = leases
        self._settings = books.settings
        self._maintained_at: datetime | None = None

    async def recover(self, reads_per_minute: float) -> Recovery:
        """Settle what a stop left behind.

        A submission cut off before it was confirmed (SUBMITTING, no task id, and no live
        process still waiting for it) is LOST: its hold comes back and it is never re-sent.
        When no other process was running, every unfinished job is read once soon (its
        video may have been made meanwhile), spread over the time the read budget
        (`reads_per_minute`) needs for them all, so a job submitted right after the restart
        is still read on its own schedule instead of waiting behind the whole backlog; and
        finished videos not yet posted are tried at once. When others were running, they
        carried on, and there is nothing to catch up.
        """
        await self._leases.start()
        now = self._books.now()
        lost: list[Job] = []
        async with self._books.db.read() as store:
            waited_for = await store.leased_submissions(now, other_than=self._leases.owner)
            cut_off = [
                job
                for job in await store.jobs_in_states([JobState.SUBMITTING])
                if not self._lifecycle.busy(job.id) and job.id not in waited_for
            ]
        for start in range(0, len(cut_off), BATCH):
            lost += await self._settle(cut_off[start : start + BATCH], _recovered)
        await self._backfill_give_up()
        others = await self._leases.others_alive()
        spread = 0
        if not others:
            spread = await self._spread_reads(reads_per_minute)
            await self._deliveries_now()
        gone = [job for job in lost if job.state is JobState.LOST]
        log.info(
            "recovery: %d job(s) settled, %d read(s) spread%s",
            len(gone),
            spread,
            f" ({len(others)} other process(es) running)" if others else "",
        )
        return Recovery(lost=gone, spread=spread)

    async def expire_overdue(self) -> list[Job]:
        """End jobs that will not finish: no answer in the configured time (EXPIRED), or a
        submission whose outcome stayed unknown and is no longer in flight (LOST). Both
        release their holds. Found by `give_up_at`, a few at a time. Also the database's
        upkeep, every MAINTAIN_EVERY."""
        now = self._books.now()
        if self._maintained_at is None:
            self._maintained_at = now  # opening the database did it
        elif now - self._maintained_at >= MAINTAIN_EVERY:
            self._maintained_at = now
            await self._books.db.maintain()
        async with self._books.db.read() as store:
            due = await store.jobs_to_give_up(now, GIVE_UP_BATCH, self._books.owner)
        return await self._settle(due, self._give_up)

    def _give_up(self, job: Job, now: datetime) -> Move | None:
        if job.task_id is None:
            # No task id: only a submission whose outcome stayed unknown (or in flight).
            return lose(job, now)
        minutes = self._lifecycle.timeout(job.off_peak).total_seconds() / 60
        return Move(
            to=JobState.EXPIRED,
            settle="release",
            why="no answer in time",
            changes={
                "failure_reason": (
                    f"The video service gave no result within {span(minutes)}, so the job "
                    f"was given up. Your {credits(job.price)} were returned."
                )
            },
        )

    async def _settle(self, jobs: list[Job], decide: Decide) -> list[Job]:
        if not jobs:
            return []
        async with self._books.db.transaction() as store:
            fresh = []
            for job in jobs:
                current = await store.get_job(job.id, for_update=True)
                if current is not None and current.state.is_active:
                    fresh.append(current)
                elif current is not None and current.give_up_at is not None:
                    # Ended without its give-up time cleared (a row from elsewhere): clear
                    # it, or every tick would find it again.
                    await store.update_job(current.id, self._books.now(), give_up_at=None)
            return await self._lifecycle.step_each(store, fresh, decide)

    async def _backfill_give_up(self) -> None:
        """Give jobs from before give-up times existed theirs: at the first start of a
        version that has them (noted in the database, so later starts read nothing)."""
        if await self._books.db.get_meta(GIVE_UP_BACKFILLED) is not None:
            return
        after = 0
        while True:
            async with self._books.db.transaction() as store:
                jobs = await store.active_without_give_up(after, BATCH)
                for job in jobs:
                    when = self._lifecycle.give_up_time(job)
                    await store.update_job(job.id, self._books.now(), give_up_at=when)
            if len(jobs) < BATCH:
                break
            after = jobs[-1].id
        await self._books.db.set_meta(GIVE_UP_BACKFILLED, "done")

    async def _spread_reads(self, reads_per_minute: float) -> int:
        """Read every unfinished job once soon (the video may have been made while the bot
        was down), in slots the read budget can serve, in the order they came; a read
        already scheduled between now and its slot keeps its time. Returns how many reads
        moved."""
        now = self._books.now()
        step = timedelta(seconds=60.0 / max(reads_per_minute, 1.0))
        slot, after, moved = now, 0, 0
        while True:
            async with self._books.db.transaction() as store:
                batch = await store.active_reads(after, BATCH)
                moves = []
                for job_id, scheduled in batch:
                    # Overdue reads join the spread too: left where they were, every one
                    # would come before a job submitted after the start.
                    if scheduled is None or not now <= scheduled <= slot:
                        moves.append((job_id, slot))
                    slot += step
                await store.set_next_reads(moves, now)
            moved += len(moves)
            if len(batch) < BATCH:
                return moved
            after = batch[-1][0]

    async def _deliveries_now(self) -> None:
        """Finished videos waiting for a delivery retry are tried again now: the outage
        that delayed them may be over, and no paid read is spent on them."""
        now, after = self._books.now(), 0
        while True:
            async with self._books.db.transaction() as store:
                ids = await store.deliveries_waiting(after, BATCH)
                await store.set_next_reads([(job_id, now) for job_id in ids], now)
            if len(ids) < BATCH:
                return
            after = ids[-1]


def _recovered(job: Job, now: datetime) -> Move:
    if job.task_id is None:
        return lose(job, now)
    # A task id without QUEUED cannot be written by this code; treat it as queued.
    return Move(to=JobState.QUEUED, changes={"next_poll_at": now})
