"""The one background task that carries every job from submission to delivery.

Each tick it expires overdue jobs, reads the result of every job whose next poll time has
come, and delivers finished videos. Every job runs in its own task guarded by its own
`try`, so one failing job never stops the others; every phase of a tick has its own `try`
too, so one failing phase never stops the others, and the loop itself logs and carries on
from anything unexpected instead of dying silently. The health file is touched only after
a tick in which every phase worked, so a poller that keeps failing looks unhealthy.

Polls and deliveries draw on separate pools of slots: a few long uploads never hold up
the reading of every other job's progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bot import metrics
from bot.api.errors import VideoAPIError
from bot.core.delivery import DeliveryOutcome
from bot.core.quota import utcnow
from bot.core.results import time_scale
from bot.core.schedule import Learned, safety_read
from bot.retry import backoff
from storage.models import JobState

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bot.api.models import TaskResult
    from bot.core.delivery import Delivery
    from bot.core.durations import Durations
    from bot.core.housekeeping import Housekeeping
    from bot.core.leases import Leases
    from bot.core.lifecycle import Lifecycle
    from bot.core.webhooks import WebhookTrust
    from bot.settings import Settings
    from storage.models import Job

log = logging.getLogger(__name__)

IDLE_SECONDS = 1.0  # how often the database is asked for due jobs when nothing wakes us
MIN_IDLE_SECONDS = 0.05  # ...or more often, when polls are meant to be closer than that
BATCH = 50  # jobs read per tick; the rest wait for the next one
# Delivery retries wait delivery_retry_seconds * 2**attempts, at most this long: a blip
# (one 503) costs about a second, a long outage is retried every 15 minutes...
DELIVERY_BACKOFF_CAP_SECONDS = 15 * 60.0
# ...and give up after this many attempts: about 23 hours of trying at the default 1 s
# (1, 2, 4 … 512 s, then every 15 minutes), which outlasts any Discord outage.
# The video's signed link may expire meanwhile; delivery renews it.
MAX_DELIVERY_ATTEMPTS = 100
# A state not shown to the member this long after it changed was cut off by a stop.
STALE_AFTER_SECONDS = 10.0
# A card still to be posted is left to its command this long, then put up by the poller...
CARD_GRACE_SECONDS = 5.0
# ...and given up after this long (the member is then told of the job by DM).
CARD_GIVE_UP_SECONDS = 600.0
GIVE_UP_REASON = "Posting kept failing; the video is in /video history."


def delivery_delay(attempts: int, base: float, retry_after: float | None = None) -> float:
    """Seconds before the next delivery attempt, after `attempts` earlier failed ones."""
    return backoff(
        attempts + 1, base=base, cap=DELIVERY_BACKOFF_CAP_SECONDS, retry_after=retry_after
    )


class ResultReader(Protocol):
    """What the poller needs of the API client (`bot.api.VideoAPI` is one)."""

    async def task_result(self, task_id: str) -> TaskResult: ...


class ReadBudget(Protocol):
    """How many result reads may go out right now (`bot.api.Budget` is one)."""

    per_minute: int

    async def available(self) -> int: ...


class Poller:
    def __init__(
        self,
        lifecycle: Lifecycle,
        housekeeping: Housekeeping,
        api: ResultReader,
        delivery: Delivery,
        settings: Settings,
        *,
        leases: Leases,
        durations: Durations | None = None,
        reads: ReadBudget | None = None,
        webhooks: WebhookTrust | None = None,
    ) -> None:
        self.lifecycle = lifecycle
        self.housekeeping = housekeeping
        self.api = api
        self.delivery = delivery
        self.settings = settings
        self.leases = leases  # how this process takes its share of the work
        self.durations = durations  # what the bot learned of how long jobs take
        self.reads = reads  # the read budget: when short, only the likeliest reads go out
        self.webhooks = webhooks  # whether webhooks arrive: if so, jobs wait for theirs
        # Separate pools, so long uploads cannot take every slot from the polls.
        self._poll_slots = asyncio.Semaphore(settings.poll_concurrency)
        self._delivery_slots = asyncio.Semaphore(settings.poll_concurrency)
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        # Steps that must not be skipped but found their job busy: run when it is free.
        self._after: dict[int, list[tuple[Callable[[Job], Awaitable[None]], Job]]] = {}
        self._started = utcnow()
        # Pending cards whose post failed: when to try again, and how many tries so far.
        self._card_retries: dict[int, tuple[float, int]] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        # A job is read at most this late: its next poll time is never closer than
        # poll_min_seconds, so looking that often is enough.
        self._idle = max(MIN_IDLE_SECONDS, min(IDLE_SECONDS, settings.poll_min_seconds))

    async def recover(self) -> None:
        """Settle what the last stop left behind, once, before the first tick."""
        # Spread over the reads the budget really serves (less than API_READS_PER_MINUTE
        # where API_REQUESTS_PER_MINUTE caps both kinds together).
        per_minute = (
            self.settings.api_reads_per_minute if self.reads is None else self.reads.per_minute
        )
        recovery = await self.housekeeping.recover(per_minute)
        for job in recovery.lost:
            self.announce(job)  # its card says the credits came back

    def wake(self) -> None:
        """Look at the database now (a job was just submitted)."""
        self._wake.set()

    def announce(self, job: Job) -> None:
        """Show a job's state to its member (e.g. a job settled while the bot was down)."""
        self._spawn(job.id, self.show, job)

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
                healthy = await self.tick()
            except Exception:
                log.exception("poller tick failed; carrying on")
                healthy = False
            if healthy:
                self._touch_health_file()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=await self._until_next_read())
        await self.drain()
        try:
            await self.leases.stop()
        except Exception:
            log.warning("could not give up this process's leases; they run out", exc_info=True)
        log.info("poller stopped")

    async def _until_next_read(self) -> float:
        """How long to sleep: until the earliest planned read, so a read lands when the
        schedule meant it rather than up to a tick later; at most the idle tick."""
        try:
            due_in = await self.leases.next_read_in()
        except Exception:
            log.warning("poller: could not ask for the next read time", exc_info=True)
            return self._idle
        if due_in is None:
            return self._idle
        return max(MIN_IDLE_SECONDS, min(self._idle, due_in))

    async def drain(self, grace: float = 10.0) -> None:
        """Let in-flight jobs finish the step they are in (their database writes complete).

        Steps a finishing step queued (a delivery after its poll) are waited for as well,
        unless the poller is stopping (then they are not started; the next start picks
        them up from the database).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        pending: set[asyncio.Task[None]] = set()
        while self._in_flight:
            tasks = list(self._in_flight.values())
            _done, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - loop.time()))
            if pending:
                break
            pending = set()
            # Let the done callbacks start what the finished steps queued.
            await asyncio.sleep(0)
        for task in pending:
            task.cancel()
        # A cancelled step rolls its transaction back; wait for that before anyone
        # closes the database under it.
        await asyncio.gather(*pending, return_exceptions=True)

    async def tick(self) -> bool:
        """One pass over everything that is due. Starts work; does not wait for it.

        Each phase runs even when an earlier one failed (one broken query must not stop
        every job). Returns whether every phase worked.
        """
        healthy = True
        for name, phase in (
            ("keep this process's leases", self._lease_phase),
            ("expire overdue jobs", self._expire_phase),
            ("poll due jobs", self._poll_phase),
            ("deliver finished videos", self._delivery_phase),
            ("redraw held-back cards", self._redraw_phase),
            ("put up pending cards", self._card_phase),
        ):
            try:
                await phase()
            except Exception:
                log.exception("poller: could not %s; carrying on", name)
                healthy = False
        return healthy

    async def _lease_phase(self) -> None:
        held = await self.leases.keep_alive(self._in_flight)
        if held is not None:
            metrics.leases_held(held)

    async def _expire_phase(self) -> None:
        for job in await self.housekeeping.expire_overdue():
            # Reported once only: if the job is busy, redraw its card when the step ends.
            self._spawn(job.id, self.show, job, later=True)

    async def _poll_phase(self) -> None:
        # No more reads than the budget can take now, the likeliest to find a video first
        # (due_jobs' order); the others wait for the next tick, still due.
        room = BATCH if self.reads is None else min(BATCH, await self.reads.available())
        if room <= 0:
            return
        for job in await self.leases.reads_due(limit=room + len(self._in_flight)):
            if room <= 0:
                break
            if job.id not in self._in_flight:
                self._spawn(job.id, self.poll_job, job)
                room -= 1

    async def _delivery_phase(self) -> None:
        for job in await self.leases.deliveries_due():
            self._spawn(job.id, self.deliver_job, job)

    async def _redraw_phase(self) -> None:
        for job in self.delivery.redraws_due():
            self._spawn(job.id, self.redraw, job)
        # States the member was never shown: a stop came between the change and the
        # showing (the normal path shows a change within seconds; a change from before
        # this process started has nobody else to show it).
        stale = await self.leases.cards_to_show(
            older_than=STALE_AFTER_SECONDS, or_before=self._started
        )
        for job in stale:
            self._spawn(job.id, self.show, job)

    async def redraw(self, job: Job) -> None:
        """Draw a card again as the job is now (another process may have moved it on since
        this one last drew it)."""
        fresh = await self.lifecycle.get_job(job.id)
        if fresh is not None:
            await self.show(fresh)

    async def show(self, job: Job) -> None:
        """Show the job's state to its member; once shown, it no longer needs showing."""
        if await self.delivery.job_changed(job) and job.card_stale:
            await self.lifecycle.card_shown(job.id, job.state)

    async def _card_phase(self) -> None:
        # Cards whose post broke off, or whose process stopped before recording them. A card
        # a command may be posting right now is left to it for a few seconds (posting it
        # twice at once would be harmless, the nonce is the same, but it is wasted work);
        # one from before this process started has no command left to post it.
        now = time.monotonic()
        orphaned = await self.leases.cards_to_post(
            older_than=CARD_GRACE_SECONDS, or_before=self._started
        )
        # A card put up meanwhile (by a command, or by another process) needs no retry.
        pending = {job.id for job in orphaned}
        self._card_retries = {k: v for k, v in self._card_retries.items() if k in pending}
        for job in orphaned:
            if self._card_retries.get(job.id, (0.0, 0))[0] <= now:
                self._spawn(job.id, self.post_card, job)

    async def post_card(self, job: Job) -> None:
        """Find the job's card again or post it; where it cannot be, tell by DM instead."""
        outcome = await self.delivery.post_card(job)
        if outcome.kind == "retry":
            tries = self._card_retries.get(job.id, (0.0, 0))[1] + 1
            age = (utcnow() - job.created_at).total_seconds()
            if age < CARD_GIVE_UP_SECONDS:
                delay = delivery_delay(tries - 1, 1.0, outcome.retry_after)
                self._card_retries[job.id] = (time.monotonic() + delay, tries)
                log.info(
                    "job %s: card not up yet (%s); next try in %.0f s",
                    job.id,
                    outcome.reason,
                    delay,
                )
                return
            log.warning("job %s: card could not be posted for %.0f s; telling by DM", job.id, age)
        self._card_retries.pop(job.id, None)
        if outcome.kind == "delivered" and outcome.message_id is not None:
            job = await self.lifecycle.card_posted(job.id, outcome.message_id)
        else:
            job = await self.lifecycle.no_card(job.id)
        # Draw the state the job has now (it may have moved since the card was posted).
        await self.show(job)

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
        slots = self._delivery_slots if step == self.deliver_job else self._poll_slots
        async with slots:
            try:
                await step(job)
            except Exception:
                log.exception("job %s: %s failed; will try again", job.id, step.__name__)

    async def poll_job(self, job: Job) -> None:
        assert job.task_id is not None
        learned = None if self.durations is None else await self.durations.learned(job)
        if await self._wait_for_webhook(job, learned):
            return
        try:
            result = await self.api.task_result(job.task_id)
        except VideoAPIError as error:
            job = await self.lifecycle.poll_failed(job.id, error)
        else:
            job = await self.lifecycle.apply_result(job.id, result, learned)
        await self.show(job)
        if job.state is JobState.SUCCEEDED and job.card_state != "pending":
            # A step of its own (in a delivery slot), started as soon as this one ends. A
            # video whose card is not up yet waits for it (it is posted as a reply to it).
            self._spawn(job.id, self.deliver_job, job, later=True)

    async def _wait_for_webhook(self, job: Job, learned: Learned | None) -> bool:
        """Whether the job's read is put off until its webhook (or a late safety read):
        only while webhooks are seen to arrive, and only for a job not yet named by one."""
        if self.webhooks is None or not job.webhook_token or job.webhook_at is not None:
            return False
        safety = safety_read(learned, scale=time_scale(self.settings))
        if safety is None or not await self.webhooks.trusted():
            return False
        return await self.lifecycle.hold_for_webhook(job, safety)

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
            made_at = job.finished_at  # when the video was found made
            job = await self.lifecycle.mark_delivered(job.id, outcome.message_id)
            metrics.delivery("delivered")
            if job.state is JobState.DELIVERED and made_at and job.finished_at:
                metrics.poll_to_post((job.finished_at - made_at).total_seconds())
        elif outcome.kind == "undeliverable":
            job = await self.lifecycle.mark_undeliverable(job.id, outcome.reason)
            metrics.delivery("undeliverable")
        elif job.attempts + 1 >= MAX_DELIVERY_ATTEMPTS:
            # This was the last attempt the cap allows (`attempts` counts the earlier ones).
            log.warning(
                "job %s: delivery failed %d times (last: %s); giving up",
                job.id,
                job.attempts + 1,
                outcome.reason,
            )
            job = await self.lifecycle.mark_undeliverable(job.id, GIVE_UP_REASON)
            metrics.delivery("undeliverable")
        else:
            delay = delivery_delay(
                job.attempts, self.settings.delivery_retry_seconds, outcome.retry_after
            )
            log.info(
                "job %s: delivery attempt %d failed (%s); next in %.0f s",
                job.id,
                job.attempts + 1,
                outcome.reason,
                delay,
            )
            await self.lifecycle.retry_delivery_later(
                job.id, delay, maybe_landed=outcome.maybe_landed
            )
            metrics.delivery("retry")
            return
        await self.show(job)

    def _touch_health_file(self) -> None:
        path = self.settings.health_file
        try:
            write_heartbeat(path, time.time())
        except OSError:
            log.warning("cannot write the health file %s", path, exc_info=True)


def write_heartbeat(path: Path, at: float) -> None:
    """Write the heartbeat whole or not at all: written beside it, then renamed over it, so
    `python -m bot health` never reads a half-written file (a truncated one read as "no
    heartbeat" while the process was fine, or after a kill landed mid-write)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.tmp")  # the file is this process's own
    draft.write_text(f"{at:.0f}\n")
    os.replace(draft, path)
