"""The job lifecycle: every state a job passes through after its row exists, and nothing else.

Each change is a `Move` chosen by a small pure function from the job as it is stored now;
`Lifecycle.step` is the one place that loads the job inside a transaction, checks the move
against the state machine, writes the ledger rows it settles, stores it, and logs it.

    SUBMITTING → QUEUED → PROCESSING → SUCCEEDED → DELIVERED
    exits: FAILED, REJECTED, LOST, EXPIRED (holds released), UNDELIVERABLE (charged)

Money rule: a success commits the job's holds; every other ending releases them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from bot.api import errors
from bot.core import moves
from bot.core.books import Books, log_transition
from bot.core.durations import KEEP
from bot.core.moves import NEXT_STATES, Decide, Move, clip, credits
from bot.core.refusals import JobNotFound
from bot.core.results import result_move, time_scale
from bot.core.schedule import Learned, Memory
from bot.retry import backoff
from storage import SYSTEM_ACTOR, Job, JobState, Store
from storage.models import CHARGED_STATES

if TYPE_CHECKING:
    from bot.api.models import TaskResult

log = logging.getLogger(__name__)

# "Task not found" fails a job only when this many reads in a row say so, the first two
# answers followed by waits of NOT_FOUND_SPACING and three times that (10 s, 30 s).
NOT_FOUND_READS = 3
NOT_FOUND_SPACING = 10.0
# A webhook for a job that asked for a read less than this long ago asks for none.
HINT_SPACING = 5.0

Hint = Literal["unknown", "mismatch", "read", "noted"]


class Lifecycle:
    def __init__(self, books: Books) -> None:
        self._books = books
        self._settings = books.settings

    # --- the one step --------------------------------------------------------------------

    async def step(self, job_id: int, decide: Decide) -> Job:
        """Load the job, let `decide` choose a move, apply it, commit, log; returns the job."""
        now = self._books.now()
        async with self._books.db.transaction() as store:
            job = await store.get_job(job_id, for_update=True)
            if job is None:
                raise LookupError(f"no job {job_id}")  # a programming error, not a refusal
            move = decide(job, now)
            if move is None:
                return job
            updated = await self._apply(store, job, move, now)
        log_transition(job.state, updated)
        return updated

    async def _apply(self, store: Store, job: Job, move: Move, now: datetime) -> Job:
        changes = dict(move.changes)
        if move.to is not None:
            if move.to is not job.state and move.to not in NEXT_STATES.get(job.state, ()):
                raise RuntimeError(f"job {job.id}: no transition from {job.state} to {move.to}")
            changes["state"] = move.to
            if move.to is not job.state:
                changes["card_stale"] = True  # until the member has been shown it
            if not move.to.is_active:
                changes["give_up_at"] = None  # only a running job is given up
            if move.to.is_terminal or move.to is JobState.SUCCEEDED:
                # For SUCCEEDED: when the video was made. Delivery looks for an earlier post
                # of it from then on; the ending (DELIVERED, ...) sets it again.
                changes.setdefault("finished_at", now)
            if move.to.is_terminal:
                changes.setdefault("next_poll_at", None)
                # Nothing more to do for anyone: the lease index keeps only live work.
                changes.update(lease_owner=None, lease_until=None)
        if move.settle is not None:
            await store.settle_holds(
                job.id, move.settle, actor=SYSTEM_ACTOR, reason=move.why, at=now
            )
        if move.learn is not None and job.bucket:
            await store.learn_duration(job.bucket, move.learn, KEEP, now)
        return await store.update_job(job.id, now, **changes)

    def busy(self, job_id: int) -> bool:
        """Whether the job's submission is running in this process right now."""
        return job_id in self._books.in_flight

    async def step_each(self, store: Store, jobs: Iterable[Job], decide: Decide) -> list[Job]:
        """Apply `decide` to many jobs inside the caller's transaction; returns those moved."""
        now = self._books.now()
        moved = []
        for job in jobs:
            move = None if job.id in self._books.in_flight else decide(job, now)
            if move is not None:
                updated = await self._apply(store, job, move, now)
                log_transition(job.state, updated)
                moved.append(updated)
        return moved

    # --- submission outcomes (see bot.core.submitting) -----------------------------------

    @contextlib.contextmanager
    def in_flight(self, job_id: int) -> Iterator[None]:
        """Mark a job's submission as running here, so recovery and expiry leave it alone."""
        self._books.in_flight.add(job_id)
        try:
            yield
        finally:
            self._books.in_flight.discard(job_id)

    async def accepted(self, job_id: int, task_id: str) -> Job:
        s = self._settings

        def decide(job: Job, now: datetime) -> Move:
            if job.state is not JobState.SUBMITTING:
                # Settled meanwhile (should not happen while in flight): keep the id for audit.
                log.error(
                    "job %s: task %s accepted but the job is already %s",
                    job.id,
                    task_id,
                    job.state,
                )
                return Move(changes={"task_id": task_id})
            first = s.off_peak_poll_seconds if job.off_peak else s.poll_min_seconds
            return Move(
                to=JobState.QUEUED,
                changes={
                    "task_id": task_id,
                    "failure_reason": None,
                    "attempts": 0,
                    "next_poll_at": now + timedelta(seconds=first),
                    "give_up_at": self.give_up_time(job.model_copy(update={"task_id": task_id})),
                },
            )

        return await self.step(job_id, decide)

    async def rejected(self, job_id: int, member_message: str) -> Job:
        def decide(job: Job, _now: datetime) -> Move | None:
            if job.state is not JobState.SUBMITTING:
                return None
            return Move(
                to=JobState.REJECTED,
                settle="release",
                why="refused by the video service",
                changes={"failure_reason": clip(member_message)},
            )

        return await self.step(job_id, decide)

    def timeout(self, off_peak: bool) -> timedelta:
        """How long a job may take before it is given up and its credits returned."""
        s = self._settings
        return timedelta(
            minutes=s.off_peak_job_timeout_minutes if off_peak else s.job_timeout_minutes
        )

    def unconfirmed_wait(self) -> timedelta:
        """How long after its creation a submission whose outcome is unknown is given up
        (and its credits return), unless it is still in flight somewhere."""
        return timedelta(seconds=self._settings.submit_timeout_seconds) + moves.UNKNOWN_GRACE

    def give_up_time(self, job: Job) -> datetime:
        """When a running job is given up: a submission without a task id after
        `unconfirmed_wait`, a task after the job timeout."""
        if job.task_id is None:
            return job.created_at + self.unconfirmed_wait()
        return job.created_at + self.timeout(job.off_peak)

    async def outcome_unknown(self, job_id: int, member_message: str | None) -> Job:
        """The service may or may not have started the video: the job waits, SUBMITTING,
        until its give-up time (kept in `next_poll_at` too), then it is given up."""

        def decide(job: Job, _now: datetime) -> Move | None:
            if job.state is not JobState.SUBMITTING:
                return None
            words = (
                member_message
                or "The bot could not confirm whether the video service started your video."
            )
            words += f" Your {credits(job.price)} are held until this is settled."
            deadline = self.give_up_time(job)
            return Move(
                changes={
                    "failure_reason": clip(words, 500),
                    "next_poll_at": deadline,
                    "give_up_at": deadline,
                }
            )

        job = await self.step(job_id, decide)
        log.info("job %s guild %s: SUBMITTING (outcome unknown)", job.id, job.guild_id)
        return job

    # --- reading -------------------------------------------------------------------------

    async def get_job(self, job_id: int) -> Job | None:
        async with self._books.db.read() as store:
            return await store.get_job(job_id)

    async def history(self, guild_id: int, user_id: int, limit: int = 10) -> list[Job]:
        async with self._books.db.read() as store:
            return await store.member_jobs(guild_id, user_id, max(1, limit))

    async def status(self, job_id: int, guild_id: int, user_id: int, is_moderator: bool) -> Job:
        """A job as the asking member may see it: their own, or any in the guild for a mod."""
        job = await self.get_job(job_id)
        if job is None or job.guild_id != guild_id or (job.user_id != user_id and not is_moderator):
            raise JobNotFound(job_id)
        return job

    # --- polling -------------------------------------------------------------------------

    async def apply_result(
        self, job_id: int, result: TaskResult, learned: Learned | None = None
    ) -> Job:
        """Move a job by a task result; idempotent (a settled job is returned unchanged).
        `learned`: how long jobs of its kind take, for the next read's schedule."""
        return await self.step(
            job_id, lambda job, now: result_move(job, result, now, self._settings, learned)
        )

    async def webhook_hint(self, token: str, task_id: str | None = None) -> Hint:
        """A webhook named the job with this token (and, if the body said, this task): the
        job is read at once (a webhook is only a hint, which that read confirms or not).

        Answers `"unknown"` for a token no job has, `"mismatch"` when the body names
        another task (forged: nothing changes), `"read"` when a read was asked for, and
        `"noted"` when none was: the job has ended, or a webhook asked for one moments ago
        (a repeated webhook costs no second read). Every known job remembers when its
        webhook came, which is how the bot learns whether webhooks arrive
        (`bot.core.webhooks`)."""
        async with self._books.db.read() as store:
            job = await store.job_by_webhook(token)
        if job is None:
            return "unknown"
        if task_id is not None and task_id != job.task_id:
            log.warning("job %s: a webhook named another task; ignored", job.id)
            return "mismatch"
        spacing = timedelta(seconds=HINT_SPACING * time_scale(self._settings))
        asked = False

        def decide(current: Job, now: datetime) -> Move | None:
            nonlocal asked
            recent = current.webhook_at is not None and now - current.webhook_at < spacing
            if current.state.is_active and current.task_id is not None and not recent:
                asked = True
                return Move(changes={"webhook_at": now, "next_poll_at": now, "read_priority": 0})
            return None if current.webhook_at is not None else Move(changes={"webhook_at": now})

        await self.step(job.id, decide)
        return "read" if asked else "noted"

    async def hold_for_webhook(self, job: Job, safety: float) -> bool:
        """Put off the job's read until its webhook comes or, failing that, until `safety`
        seconds after submission (`bot.core.schedule.safety_read`). False when that time
        has come (or a webhook already did): read it now."""
        until = job.created_at + timedelta(seconds=safety)
        if job.webhook_at is not None or self._books.now() >= until:
            return False
        held = False

        def decide(current: Job, now: datetime) -> Move | None:
            nonlocal held
            if not current.state.is_active or current.webhook_at is not None or now >= until:
                return None
            held = True
            return Move(changes={"next_poll_at": until, "read_priority": 1})

        await self.step(job.id, decide)
        return held

    async def poll_failed(self, job_id: int, error: errors.VideoAPIError) -> Job:
        """A task-result read failed: anything but "task not found" backs off. "Not found"
        fails the job only when NOT_FOUND_READS reads in a row, spaced out, say so: a service
        replica lagging behind the one that took the task says it briefly, and failing then
        would pay for a video nobody receives."""
        s = self._settings

        def decide(job: Job, now: datetime) -> Move | None:
            if not job.state.is_active or job.task_id is None:
                return None
            memory = Memory.from_json(job.read_state)
            if isinstance(error, errors.TaskNotFoundError):
                not_found = memory.not_found + 1
                if not_found >= NOT_FOUND_READS:
                    return Move(
                        to=JobState.FAILED,
                        settle="release",
                        why="task not found",
                        changes={"failure_reason": clip(error.member_message)},
                    )
                wait = NOT_FOUND_SPACING * 3 ** (not_found - 1)
                log.info(
                    "job %s: the service does not know task %s (%d of %d); asking again in %.0f s",
                    job.id,
                    job.task_id,
                    not_found,
                    NOT_FOUND_READS,
                    wait,
                )
                memory = replace(memory, not_found=not_found)
                return Move(
                    changes={
                        "read_state": memory.to_json(),
                        "next_poll_at": now + timedelta(seconds=wait),
                    }
                )
            attempts = job.attempts + 1
            retry_after = error.retry_after if isinstance(error, errors.RateLimitError) else None
            delay = backoff(
                attempts + 1,
                base=s.poll_min_seconds,
                cap=s.poll_max_seconds,
                retry_after=retry_after,
            )
            if job.off_peak:
                delay = max(delay, s.off_peak_poll_seconds)
            log.info(
                "job %s: result read failed (attempt %d, next in %.0f s): %s",
                job.id,
                attempts,
                delay,
                error,
            )
            return Move(
                changes={"attempts": attempts, "next_poll_at": now + timedelta(seconds=delay)}
            )

        return await self.step(job_id, decide)

    # --- delivery ------------------------------------------------------------------------

    async def card_posted(self, job_id: int, message_id: int, shows: JobState | None = None) -> Job:
        """The job's card is up (or was found again): `message_id` names it; `shows` is the
        state it was drawn with (then shown, if the job is still in it)."""

        def decide(job: Job, _now: datetime) -> Move:
            changes: dict[str, object] = {"card_message_id": message_id, "card_state": "posted"}
            if shows is job.state:
                changes["card_stale"] = False
            return Move(changes=changes)

        return await self.step(job_id, decide)

    async def no_card(self, job_id: int) -> Job:
        """The card cannot be posted where the job was made: its member hears of the job by
        direct message instead (a promise the command makes them)."""

        def decide(job: Job, _now: datetime) -> Move | None:
            if job.card_state == "posted":
                return None
            return Move(changes={"card_state": "none"})

        return await self.step(job_id, decide)

    async def card_shown(self, job_id: int, state: JobState) -> Job:
        """The member has been shown the job in `state` (its card, or a DM)."""

        def decide(job: Job, _now: datetime) -> Move | None:
            if not job.card_stale or job.state is not state:
                return None  # shown already, or it has moved on since
            return Move(changes={"card_stale": False})

        return await self.step(job_id, decide)

    async def mark_delivered(self, job_id: int, message_id: int) -> Job:
        return await self._finish_delivery(
            job_id, JobState.DELIVERED, delivered_message_id=message_id
        )

    async def mark_undeliverable(self, job_id: int, reason: str) -> Job:
        """Made (and charged) but could not be posted; kept in history while its URL lives."""
        return await self._finish_delivery(
            job_id, JobState.UNDELIVERABLE, failure_reason=clip(reason)
        )

    async def _finish_delivery(self, job_id: int, state: JobState, **changes: object) -> Job:
        def decide(job: Job, _now: datetime) -> Move | None:
            if job.state is not JobState.SUCCEEDED:
                if job.state is not state:
                    log.warning("job %s: cannot become %s from %s", job_id, state, job.state)
                return None
            return Move(to=state, changes=changes)

        return await self.step(job_id, decide)

    async def renew_result_link(self, job_id: int, result: TaskResult) -> Job:
        """Store a fresh link to a finished video (signed links expire; the video does not).

        Only the link changes: the job stays where it is and no ledger row is written.
        """
        video = result.video if result.succeeded else None

        def decide(job: Job, now: datetime) -> Move | None:
            if video is None or not video.video_url or job.state not in CHARGED_STATES:
                return None
            ttl = video.video_url_ttl
            expires = now + timedelta(seconds=ttl) if ttl else None
            return Move(changes={"result_url": video.video_url, "result_expires_at": expires})

        return await self.step(job_id, decide)

    async def retry_delivery_later(
        self, job_id: int, seconds: float, *, maybe_landed: bool = False
    ) -> Job:
        """Try the delivery again in `seconds`; `maybe_landed`: the failed post broke off
        without an answer, so it may be in the channel (remembered from the first time)."""

        def decide(job: Job, now: datetime) -> Move | None:
            if job.state is not JobState.SUCCEEDED:
                return None
            changes: dict[str, object] = {
                "attempts": job.attempts + 1,
                "next_poll_at": now + timedelta(seconds=max(0.0, seconds)),
            }
            if maybe_landed and job.delivery_uncertain_at is None:
                changes["delivery_uncertain_at"] = now
            return Move(changes=changes)

        return await self.step(job_id, decide)
