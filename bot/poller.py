"""The one background task that carries every job from submission to delivery.

Each tick it expires overdue jobs, reads the result of every job whose next poll time has
come, and delivers finished videos. Every job runs in its own task guarded by its own
`try`, so one failing job never stops the others, and the loop itself logs and carries on
from anything unexpected instead of dying silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from bot.api.errors import VideoAPIError
from bot.delivery import DeliveryOutcome
from storage.models import JobState

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bot.api import VideoAPI
    from bot.delivery import Delivery
    from bot.jobs import JobService
    from bot.settings import Settings
    from storage.models import Job

log = logging.getLogger(__name__)

IDLE_SECONDS = 1.0  # how often the database is asked for due jobs when nothing wakes us
MIN_IDLE_SECONDS = 0.05  # ...or more often, when polls are meant to be closer than that
BATCH = 50  # jobs read per tick; the rest wait for the next one


class Poller:
    def __init__(
        self, service: JobService, api: VideoAPI, delivery: Delivery, settings: Settings
    ) -> None:
        self.service = service
        self.api = api
        self.delivery = delivery
        self.settings = settings
        self._slots = asyncio.Semaphore(settings.poll_concurrency)
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        # Steps that must not be skipped but found their job busy: run when it is free.
        self._after: dict[int, list[tuple[Callable[[Job], Awaitable[None]], Job]]] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        # A job is read at most this late: its next poll time is never closer than
        # poll_min_seconds, so looking that often is enough.
        self._idle = max(MIN_IDLE_SECONDS, min(IDLE_SECONDS, settings.poll_min_seconds))

    def wake(self) -> None:
        """Look at the database now (a job was just submitted)."""
        self._wake.set()

    def announce(self, job: Job) -> None:
        """Show a job's state to its member (e.g. a job settled while the bot was down)."""
        self._spawn(job.id, self.delivery.job_changed, job)

    @property
    def stopping(self) -> bool:
        return self._stopping

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run_forever(self) -> None:
        log.info("poller started")
        while not self._stopping:
            # Cleared before the tick, so a wake() during it is not lost.
            self._wake.clear()
            try:
                await self.tick()
            except Exception:
                log.exception("poller tick failed; carrying on")
            self._touch_health_file()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._idle)
        await self.drain()
        log.info("poller stopped")

    async def drain(self, grace: float = 10.0) -> None:
        """Let in-flight jobs finish the step they are in (their database writes complete)."""
        tasks = list(self._in_flight.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            # A cancelled step rolls its transaction back; wait for that before anyone
            # closes the database under it.
            await asyncio.gather(*pending, return_exceptions=True)

    async def tick(self) -> None:
        """One pass over everything that is due. Starts work; does not wait for it."""
        for job in await self.service.expire_overdue():
            # Reported once only: if the job is busy, redraw its card when the step ends.
            self._spawn(job.id, self.delivery.job_changed, job, later=True)
        for job in await self.service.due_jobs(limit=BATCH):
            self._spawn(job.id, self.poll_job, job)
        for job in await self.service.pending_deliveries():
            self._spawn(job.id, self.deliver_job, job)
        for job in self.delivery.redraws_due():
            self._spawn(job.id, self.delivery.job_changed, job)

    async def run_once(self) -> None:
        """One tick, waiting for all the work it started (tests drive the poller with it)."""
        await self.tick()
        await self.drain(grace=60.0)

    def _spawn(
        self,
        job_id: int,
        step: Callable[[Job], Awaitable[None]],
        job: Job,
        *,
        later: bool = False,
    ) -> None:
        if self._stopping:
            return
        if job_id in self._in_flight:
            if later:
                self._after.setdefault(job_id, []).append((step, job))
            return
        task = asyncio.create_task(self._guarded(step, job), name=f"job-{job_id}")
        self._in_flight[job_id] = task
        task.add_done_callback(lambda _t: self._step_done(job_id))

    def _step_done(self, job_id: int) -> None:
        self._in_flight.pop(job_id, None)
        waiting = self._after.pop(job_id, [])
        if waiting:
            step, job = waiting.pop(0)
            self._spawn(job_id, step, job)
            for step, job in waiting:
                self._spawn(job_id, step, job, later=True)

    async def _guarded(self, step: Callable[[Job], Awaitable[None]], job: Job) -> None:
        async with self._slots:
            try:
                await step(job)
            except Exception:
                log.exception("job %s: %s failed; will try again", job.id, step.__name__)

    async def poll_job(self, job: Job) -> None:
        assert job.task_id is not None
        try:
            result = await self.api.task_result(job.task_id)
        except VideoAPIError as error:
            job = await self.service.poll_failed(job.id, error)
        else:
            job = await self.service.apply_result(job.id, result)
        await self.delivery.job_changed(job)
        if job.state is JobState.SUCCEEDED:
            await self.deliver_job(job)

    async def deliver_job(self, job: Job) -> None:
        try:
            outcome = await self.delivery.deliver(job)
        except Exception:
            # Counted and spaced out like any failed attempt, so a delivery that keeps
            # breaking ends as undeliverable instead of being retried every tick for ever.
            log.exception("job %s: delivery failed unexpectedly", job.id)
            outcome = DeliveryOutcome.retry("unexpected error")
        if outcome.kind == "delivered":
            assert outcome.message_id is not None
            job = await self.service.mark_delivered(job.id, outcome.message_id)
        elif outcome.kind == "undeliverable":
            job = await self.service.mark_undeliverable(job.id, outcome.reason)
        else:
            delay = outcome.retry_after or self.settings.delivery_retry_seconds
            log.info("job %s: delivery postponed %.0f s (%s)", job.id, delay, outcome.reason)
            await self.service.retry_delivery_later(job.id, delay)
            return
        await self.delivery.job_changed(job)

    def _touch_health_file(self) -> None:
        path = self.settings.health_file
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{time.time():.0f}\n")
        except OSError:
            log.warning("cannot write the health file %s", path, exc_info=True)
