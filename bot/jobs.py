"""The job service: quota, storage and the video API tied together, with no Discord in it.

Money rule: a member is charged only for a video the service made. `submit` places a hold
(in the same transaction as every check and the job row), a success commits it, and every
other ending (rejection, failure, loss, expiry) releases it.

How a crash at each step of `submit` is resolved:

1. Before the first transaction commits: nothing was written; nothing was sent.
2. After it commits, before or during the API call: the job is SUBMITTING without a task
   id. Nothing can tell whether the service accepted it, and re-sending could make (and
   bill) the video twice, so it is never re-sent: `recover()` at the next start marks it
   LOST and releases the hold.
3. After the API answered, before the second transaction commits: the same as 2 (the task
   id is in the log line "task accepted" for the operator to reconcile by hand).
4. After the second transaction: QUEUED with a task id; `recover()` hands it back to the
   poller, which carries on where it left off.
An outcome the API itself could not tell (timeout, 5xx) stays SUBMITTING with a
`failure_reason` saying so, and is settled (LOST, released) by `recover()` or, while the bot
keeps running, by `expire_overdue()` once the submission is no longer in flight.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from bot.api import errors
from bot.api.models import RequestValidationError, describe_validation_error
from bot.catalog import CATALOG, ModelSpec, get_model
from bot.errors import UserFacingError
from bot.pricing import price_of_body
from bot.quota import (
    PERIODS,
    bonus_removable,
    compute_balance,
    day_start,
    describe_allowance,
    effective_allowance,
    period_start,
    resettable,
    split_hold,
    utcnow,
)
from storage import (
    SYSTEM_ACTOR,
    UNSET,
    Balance,
    Database,
    GuildDefaults,
    GuildSettings,
    InputRef,
    Job,
    JobState,
    LedgerPage,
    NewJob,
    Period,
    Store,
    Unset,
)
from storage.models import CHARGED_STATES, LedgerPool

if TYPE_CHECKING:
    from bot.api.endpoints import Endpoint
    from bot.api.models import TaskResult, VideoRequest
    from bot.settings import Settings

log = logging.getLogger(__name__)

# A SUBMITTING job with no task id is given up this long after its submit timeout, in case
# it is not in flight here (a second process, a crashed coroutine).
UNKNOWN_OUTCOME_GRACE = timedelta(seconds=60)
MAX_CONCURRENT_LIMIT = 50
TYPICAL_PRICE_SAMPLE = 20
FAILURE_REASON_MAX_CHARS = 300

# The transitions a job may make; anything else is a bug and is refused loudly.
_NEXT_STATES: dict[JobState, frozenset[JobState]] = {
    # SUBMITTING → PROCESSING/SUCCEEDED/FAILED only for a job that somehow has a task id
    # without having been QUEUED (recovery normally queues those first).
    JobState.SUBMITTING: frozenset(
        {
            JobState.QUEUED,
            JobState.PROCESSING,
            JobState.SUCCEEDED,
            JobState.FAILED,
            JobState.REJECTED,
            JobState.LOST,
            JobState.EXPIRED,
        }
    ),
    JobState.QUEUED: frozenset(
        {JobState.PROCESSING, JobState.SUCCEEDED, JobState.FAILED, JobState.EXPIRED}
    ),
    JobState.PROCESSING: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.EXPIRED}),
    JobState.SUCCEEDED: frozenset({JobState.DELIVERED, JobState.UNDELIVERABLE}),
}


class Refusal(UserFacingError):
    """The service will not do what was asked; `message` tells the member what to change.

    `code` is one of: model_unknown, model_disabled, channel_not_allowed, blocked,
    too_many_jobs, not_enough_credits, guild_cap, operator_cap, invalid_request, not_found.
    """

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message, code=code)


class VideoSubmitter(Protocol):
    """What the service needs of the API client (`bot.api.VideoAPI` is one)."""

    async def submit(self, endpoint: Endpoint, request: VideoRequest) -> str: ...


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    guild_id: int
    channel_id: int
    user_id: int
    model: str
    params: Mapping[str, Any]  # the request fields, as the model's request class takes them
    inputs: Sequence[InputRef] = field(default_factory=tuple)
    reroll_of: int | None = None


@dataclass(frozen=True, slots=True)
class Recovery:
    """What `recover` did: jobs it settled as LOST (their members should hear so), and jobs
    the poller carries on with."""

    lost: list[Job]
    resumed: list[Job]


@dataclass(frozen=True, slots=True)
class Quote:
    price: int
    balance: Balance
    affordable: bool


@dataclass(frozen=True, slots=True)
class _Prepared:
    spec: ModelSpec
    request: VideoRequest
    body: dict[str, Any]
    price: int

    @property
    def off_peak(self) -> bool:
        return bool(self.body.get("off_peak", False))


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _credits(amount: int) -> str:
    return f"{amount} credit" if amount == 1 else f"{amount} credits"


def _span(minutes: float) -> str:
    if minutes < 120:
        return f"{minutes:g} minute" + ("" if minutes == 1 else "s")
    hours = minutes / 60
    return f"{hours:.3g} hours"


def _clip(text: str, limit: int = FAILURE_REASON_MAX_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def _load(store: Store, job_id: int) -> Job:
    """The job, read inside the caller's transaction; a missing one is a programming error."""
    job = await store.get_job(job_id)
    if job is None:
        raise LookupError(f"no job {job_id}")
    return job


def failure_words(reason: str) -> str:
    """A task's failure `reason` in words a member understands."""
    known = errors.REASON_MEMBER_MESSAGES.get(reason.strip())
    if known:
        return known
    if reason.strip():
        return _clip(f"The video service could not make this video: {reason.strip()}")
    return "The video service could not make this video."


class JobService:
    def __init__(
        self,
        db: Database,
        api: VideoSubmitter,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._api = api
        self._settings = settings
        self._clock = clock
        # Jobs whose API call is running in this process: nothing else may settle them.
        self._in_flight: set[int] = set()

    # --- helpers ----------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        if now.utcoffset() is None:
            raise ValueError("the clock must return timezone-aware datetimes")
        return now

    def _defaults(self) -> GuildDefaults:
        s = self._settings
        return GuildDefaults(
            allowance=s.default_allowance,
            period=s.default_period,
            max_concurrent=s.default_max_concurrent_jobs,
        )

    def _prepare(self, model: str, params: Mapping[str, Any]) -> _Prepared:
        try:
            spec = get_model(model)
        except ValueError:
            known = ", ".join(sorted(CATALOG))
            raise Refusal(
                f"There is no video model called `{model}`. Choose one of: {known}.",
                code="model_unknown",
            ) from None
        if not isinstance(params, Mapping):
            raise Refusal("The request must be a set of named options.", code="invalid_request")
        try:
            request = spec.request_model.from_body(dict(params))
        except (RequestValidationError, ValidationError) as error:
            raise Refusal(
                _sentence(describe_validation_error(error)), code="invalid_request"
            ) from None
        body = request.to_body()
        return _Prepared(spec, request, body, price_of_body(spec.name, body, self._settings))

    @staticmethod
    def _check_model_enabled(guild: GuildSettings, spec: ModelSpec) -> None:
        if guild.enabled_models is not None and spec.name not in guild.enabled_models:
            enabled = ", ".join(m for m in guild.enabled_models if m in CATALOG)
            hint = f" Choose one of: {enabled}." if enabled else " Ask a moderator to enable one."
            raise Refusal(
                f"The model `{spec.name}` is turned off on this server.{hint}",
                code="model_disabled",
            )

    @staticmethod
    def _check_channel(guild: GuildSettings, channel_id: int) -> None:
        if guild.allowed_channels and channel_id not in guild.allowed_channels:
            where = ", ".join(f"<#{c}>" for c in guild.allowed_channels)
            raise Refusal(
                f"Videos can't be made in this channel. Use {where}.",
                code="channel_not_allowed",
            )

    async def _balance_in(
        self, store: Store, guild: GuildSettings, guild_id: int, user_id: int, now: datetime
    ) -> Balance:
        quota = await store.member_quota(guild_id, user_id)
        usage = await store.member_usage(guild_id, user_id, period_start(guild.period, now))
        return compute_balance(
            allowance=effective_allowance(quota, guild.allowance),
            blocked=quota.blocked,
            period=guild.period,
            usage=usage,
            now=now,
        )

    async def _transition(
        self, store: Store, job: Job, state: JobState, now: datetime, **changes: object
    ) -> Job:
        if state is not job.state and state not in _NEXT_STATES.get(job.state, frozenset()):
            raise RuntimeError(f"job {job.id}: no transition from {job.state} to {state}")
        if state.is_terminal or state is JobState.SUCCEEDED:
            # For SUCCEEDED: when the video was made. Delivery looks for an earlier post of
            # it from then on; the ending (DELIVERED, ...) sets it again.
            changes.setdefault("finished_at", now)
        if state.is_terminal:
            changes.setdefault("next_poll_at", None)
        return await store.update_job(job.id, now, state=state, **changes)

    @staticmethod
    def _log_transition(before: JobState | None, job: Job) -> None:
        if before is job.state:
            return
        log.info(
            "job %s guild %s task %s: %s -> %s",
            job.id,
            job.guild_id,
            job.task_id,
            before.value if before else "new",
            job.state.value,
        )

    async def _release(self, store: Store, job: Job, reason: str, now: datetime) -> None:
        await store.settle_holds(job.id, "release", actor=SYSTEM_ACTOR, reason=reason, at=now)

    # --- quoting and submitting --------------------------------------------------------

    async def quote(
        self, guild_id: int, user_id: int, model: str, params: Mapping[str, Any]
    ) -> Quote:
        """The price of a request and the member's balance; spends nothing.

        Raises `Refusal` for an unknown or disabled model and an invalid request.
        """
        prepared = self._prepare(model, params)
        now = self._now()
        async with self._db.read() as store:
            guild = await store.guild_settings(guild_id, self._defaults())
            self._check_model_enabled(guild, prepared.spec)
            balance = await self._balance_in(store, guild, guild_id, user_id, now)
        affordable = not balance.blocked and split_hold(prepared.price, balance) is not None
        return Quote(price=prepared.price, balance=balance, affordable=affordable)

    async def submit(self, request: SubmitRequest) -> Job:
        """Check, hold, create the job, send it; see the module docstring for crash safety.

        Returns the job: QUEUED (accepted), REJECTED (refused by the API; hold released) or
        SUBMITTING with a `failure_reason` (outcome unknown; settled later, never re-sent).
        Raises `Refusal` when any check fails (nothing is written then).
        """
        prepared = self._prepare(request.model, request.params)
        now = self._now()
        guild_id, user_id = request.guild_id, request.user_id
        async with self._db.transaction() as store:
            guild = await store.guild_settings(guild_id, self._defaults())
            self._check_model_enabled(guild, prepared.spec)
            self._check_channel(guild, request.channel_id)
            balance = await self._balance_in(store, guild, guild_id, user_id, now)
            if balance.blocked:
                raise Refusal(
                    "You are blocked from making videos on this server. "
                    "Ask a moderator if you think this is a mistake.",
                    code="blocked",
                )
            running = await store.count_active_jobs(guild_id, user_id)
            if running >= guild.max_concurrent:
                raise Refusal(
                    f"You already have {running} video{'s' if running != 1 else ''} in progress "
                    f"(the limit here is {guild.max_concurrent}). Wait for one to finish, "
                    "then try again.",
                    code="too_many_jobs",
                )
            split = split_hold(prepared.price, balance)
            if split is None:
                raise Refusal(self._not_enough(prepared.price, balance), code="not_enough_credits")
            await self._check_caps(store, guild, prepared.price, now)
            if request.reroll_of is not None:
                original = await store.get_job(request.reroll_of)
                if original is None or original.guild_id != guild_id:
                    raise Refusal(
                        f"There is no job #{request.reroll_of} on this server to re-roll.",
                        code="not_found",
                    )
            job = await store.insert_job(
                NewJob(
                    guild_id=guild_id,
                    channel_id=request.channel_id,
                    user_id=user_id,
                    model=prepared.spec.name,
                    params=prepared.body,
                    inputs=list(request.inputs),
                    price=prepared.price,
                    off_peak=prepared.off_peak,
                    reroll_of=request.reroll_of,
                ),
                state=JobState.SUBMITTING,
                at=now,
            )
            # Every job gets at least one hold row (even a free one), so "every hold ends as
            # a commit or a release" describes every job.
            parts: list[tuple[LedgerPool, int]] = [
                ("period", split.period),
                ("bonus", split.bonus),
            ]
            for pool, amount in parts:
                if amount > 0 or (pool == "period" and split.total == 0):
                    await store.add_ledger(
                        guild_id=guild_id,
                        user_id=user_id,
                        job_id=job.id,
                        kind="hold",
                        pool=pool,
                        amount=amount,
                        actor=SYSTEM_ACTOR,
                        reason=f"job #{job.id} ({prepared.spec.name})",
                        at=now,
                    )
        # Marked only once the row is committed (no await between): a cancelled COMMIT must
        # not leave an id here that would shield the job from recovery forever.
        self._in_flight.add(job.id)
        self._log_transition(None, job)
        try:
            return await self._send(job, prepared)
        finally:
            self._in_flight.discard(job.id)

    def _not_enough(self, price: int, balance: Balance) -> str:
        left = balance.available or 0
        text = f"This video costs {_credits(price)}, but you have {_credits(left)} left."
        advice = " Choose a shorter duration or a lower resolution"
        if balance.resets_at is not None:
            advice += f", or wait for your allowance to renew on {_when(balance.resets_at)}"
        return text + advice + "."

    async def _check_caps(
        self, store: Store, guild: GuildSettings, price: int, now: datetime
    ) -> None:
        today = day_start(now)
        tomorrow = _when(today + timedelta(days=1))
        if guild.daily_cap is not None:
            spent = await store.spent_since(today, guild.guild_id)
            if spent + price > guild.daily_cap:
                left = max(0, guild.daily_cap - spent)
                raise Refusal(
                    f"This server has reached its daily limit of {_credits(guild.daily_cap)} "
                    f"({_credits(left)} left today; this video costs {_credits(price)}). "
                    f"Choose a cheaper video or try again after {tomorrow}.",
                    code="guild_cap",
                )
        cap = self._settings.operator_daily_cap
        if cap is not None:
            spent = await store.spent_since(today)
            if spent + price > cap:
                raise Refusal(
                    "The bot has reached its daily video budget across all servers "
                    f"(this video costs {_credits(price)}). "
                    f"Choose a cheaper video or try again after {tomorrow}.",
                    code="operator_cap",
                )

    async def _send(self, job: Job, prepared: _Prepared) -> Job:
        try:
            task_id = await self._api.submit(prepared.spec.endpoint, prepared.request)
        except (
            errors.SubmissionOutcomeUnknown,
            errors.ServerError,
            errors.APITimeoutError,
            errors.MalformedResponseError,
        ) as error:
            # The request may have reached the service: never send it again.
            log.warning("job %s: submission outcome unknown: %s", job.id, error)
            return await self._outcome_unknown(job, error.member_message)
        except errors.VideoAPIError as error:
            log.info("job %s: submission refused: %s", job.id, error)
            return await self._rejected(job, error.member_message)
        except Exception:
            log.exception("job %s: unexpected error while submitting", job.id)
            return await self._outcome_unknown(job, None)
        log.info("job %s guild %s task %s: task accepted", job.id, job.guild_id, task_id)
        return await self._accepted(job, task_id)

    async def _accepted(self, job: Job, task_id: str) -> Job:
        now = self._now()
        first_poll = (
            self._settings.off_peak_poll_seconds
            if job.off_peak
            else self._settings.poll_min_seconds
        )
        async with self._db.transaction() as store:
            current = await _load(store, job.id)
            if current.state is not JobState.SUBMITTING:
                # Settled meanwhile (should not happen while in flight): keep the id for audit.
                log.error(
                    "job %s: task %s accepted but the job is already %s",
                    job.id,
                    task_id,
                    current.state,
                )
                return await store.update_job(job.id, now, task_id=task_id)
            updated = await self._transition(
                store,
                current,
                JobState.QUEUED,
                now,
                task_id=task_id,
                failure_reason=None,
                attempts=0,
                next_poll_at=now + timedelta(seconds=first_poll),
            )
        self._log_transition(current.state, updated)
        return updated

    async def _rejected(self, job: Job, member_message: str) -> Job:
        now = self._now()
        async with self._db.transaction() as store:
            current = await _load(store, job.id)
            if current.state is not JobState.SUBMITTING:
                return current
            await self._release(store, current, "refused by the video service", now)
            updated = await self._transition(
                store, current, JobState.REJECTED, now, failure_reason=_clip(member_message)
            )
        self._log_transition(current.state, updated)
        return updated

    async def _outcome_unknown(self, job: Job, member_message: str | None) -> Job:
        now = self._now()
        words = (
            member_message
            or "The bot could not confirm whether the video service started your video."
        )
        words = (
            f"{words} Your {_credits(job.price)} are held until this is settled; "
            "they come back if the video is not made."
        )
        async with self._db.transaction() as store:
            current = await _load(store, job.id)
            if current.state is not JobState.SUBMITTING:
                return current
            updated = await store.update_job(job.id, now, failure_reason=_clip(words, 500))
        log.info(
            "job %s guild %s task %s: SUBMITTING (outcome unknown)",
            job.id,
            job.guild_id,
            job.task_id,
        )
        return updated

    # --- progress -----------------------------------------------------------------------

    async def attach_card(self, job_id: int, message_id: int) -> Job:
        now = self._now()
        async with self._db.transaction() as store:
            await _load(store, job_id)
            return await store.update_job(job_id, now, card_message_id=message_id)

    async def get_job(self, job_id: int) -> Job | None:
        async with self._db.read() as store:
            return await store.get_job(job_id)

    async def recover(self) -> Recovery:
        """Settle what a stop left behind: the jobs now LOST, and those to carry on with.

        SUBMITTING without a task id → LOST (hold released): it was never confirmed, and is
        never re-sent. Jobs with a task id (and finished videos not yet posted) are due at
        once.
        """
        now = self._now()
        changes: list[tuple[JobState, Job]] = []
        resumed: list[Job] = []
        async with self._db.transaction() as store:
            for job in await store.jobs_in_states(
                [JobState.SUBMITTING, JobState.QUEUED, JobState.PROCESSING, JobState.SUCCEEDED]
            ):
                if job.id in self._in_flight:
                    continue
                if job.state is JobState.SUBMITTING and job.task_id is None:
                    changes.append((job.state, await self._lose(store, job, now)))
                    continue
                if job.state is JobState.SUBMITTING:
                    # A task id without QUEUED cannot be written by this code; treat it as queued.
                    updated = await self._transition(store, job, JobState.QUEUED, now)
                    changes.append((job.state, updated))
                    job = updated
                if job.next_poll_at is None or job.next_poll_at > now:
                    job = await store.update_job(job.id, now, next_poll_at=now)
                resumed.append(job)
        for before, job in changes:
            self._log_transition(before, job)
        log.info("recovery: %d job(s) settled, %d to resume", len(changes), len(resumed))
        lost = [job for _before, job in changes if job.state is JobState.LOST]
        return Recovery(lost=lost, resumed=resumed)

    async def _lose(self, store: Store, job: Job, now: datetime) -> Job:
        await self._release(store, job, "submission never confirmed", now)
        return await self._transition(
            store,
            job,
            JobState.LOST,
            now,
            failure_reason=(
                "The bot stopped before the video service confirmed this video, so it was "
                f"given up (never sent twice). Your {_credits(job.price)} were returned."
            ),
        )

    async def apply_result(self, job_id: int, result: TaskResult) -> Job:
        """Move a job by a task result; idempotent (a settled job is returned unchanged)."""
        now = self._now()
        async with self._db.transaction() as store:
            job = await _load(store, job_id)
            if not job.state.is_active or job.task_id is None:
                return job
            before = job.state
            if result.succeeded and result.video is not None and result.video.video_url:
                video = result.video
                await store.settle_holds(
                    job.id, "commit", actor=SYSTEM_ACTOR, reason="video made", at=now
                )
                expires = (
                    now + timedelta(seconds=video.video_url_ttl) if video.video_url_ttl else None
                )
                job = await self._transition(
                    store,
                    job,
                    JobState.SUCCEEDED,
                    now,
                    progress=100,
                    eta=None,
                    result_url=video.video_url,
                    result_expires_at=expires,
                    failure_reason=None,
                    attempts=0,
                    next_poll_at=now,  # due for delivery at once
                )
            elif result.succeeded or result.failed:
                words = (
                    failure_words(result.task.reason)
                    if result.failed
                    else "The video service said the video was made but sent no video."
                )
                await self._release(store, job, f"task failed: {result.task.reason}", now)
                job = await self._transition(store, job, JobState.FAILED, now, failure_reason=words)
            else:
                progress = result.task.progress_percent
                progress = job.progress if progress is None else max(job.progress, progress)
                eta = result.task.eta or None
                # The service may report QUEUED again; the job never goes back from PROCESSING.
                state = (
                    JobState.QUEUED
                    if result.task.status.name == "QUEUED" and job.state is JobState.QUEUED
                    else JobState.PROCESSING
                )
                delay = self._poll_delay(job, eta, progress, now)
                job = await self._transition(
                    store,
                    job,
                    state,
                    now,
                    progress=progress,
                    eta=eta,
                    attempts=0,
                    next_poll_at=now + timedelta(seconds=delay),
                )
        self._log_transition(before, job)
        return job

    def _poll_delay(self, job: Job, eta: int | None, progress: int, now: datetime) -> float:
        """Seconds to the next poll: about half the time left, within the configured bounds."""
        s = self._settings
        if job.off_peak:
            return s.off_peak_poll_seconds
        if eta:
            guess = eta / 2
        elif 0 < progress < 100:
            elapsed = (now - job.created_at).total_seconds()
            guess = elapsed * (100 - progress) / progress / 2
        else:
            guess = (now - job.created_at).total_seconds() / 4
        return min(s.poll_max_seconds, max(s.poll_min_seconds, guess))

    async def poll_failed(self, job_id: int, error: errors.VideoAPIError) -> Job:
        """A task-result read failed: TaskNotFound fails the job; anything else backs off."""
        now = self._now()
        async with self._db.transaction() as store:
            job = await _load(store, job_id)
            if not job.state.is_active or job.task_id is None:
                return job
            before = job.state
            if isinstance(error, errors.TaskNotFoundError):
                await self._release(store, job, "task not found", now)
                job = await self._transition(
                    store, job, JobState.FAILED, now, failure_reason=_clip(error.member_message)
                )
            else:
                attempts = job.attempts + 1
                s = self._settings
                delay = min(s.poll_max_seconds, s.poll_min_seconds * 2 ** min(attempts, 16))
                if isinstance(error, errors.RateLimitError) and error.retry_after:
                    delay = max(delay, error.retry_after)
                if job.off_peak:
                    delay = max(delay, s.off_peak_poll_seconds)
                job = await store.update_job(
                    job.id, now, attempts=attempts, next_poll_at=now + timedelta(seconds=delay)
                )
                log.info(
                    "job %s: result read failed (attempt %d, next in %.0f s): %s",
                    job.id,
                    attempts,
                    delay,
                    error,
                )
        self._log_transition(before, job)
        return job

    async def due_jobs(self, limit: int = 50) -> list[Job]:
        """Jobs with a task id whose next poll time has come."""
        now = self._now()
        async with self._db.read() as store:
            return await store.jobs_due(now, limit)

    async def pending_deliveries(self, limit: int = 50) -> list[Job]:
        """SUCCEEDED jobs whose (next) delivery attempt is due."""
        now = self._now()
        async with self._db.read() as store:
            return await store.deliveries_due(now, limit)

    async def mark_delivered(self, job_id: int, message_id: int) -> Job:
        return await self._finish_delivery(
            job_id, JobState.DELIVERED, delivered_message_id=message_id
        )

    async def mark_undeliverable(self, job_id: int, reason: str) -> Job:
        """Made (and charged) but could not be posted; kept in history while its URL lives."""
        return await self._finish_delivery(
            job_id, JobState.UNDELIVERABLE, failure_reason=_clip(reason)
        )

    async def _finish_delivery(self, job_id: int, state: JobState, **changes: object) -> Job:
        now = self._now()
        async with self._db.transaction() as store:
            job = await _load(store, job_id)
            if job.state is not JobState.SUCCEEDED:
                if job.state is not state:
                    log.warning("job %s: cannot become %s from %s", job_id, state, job.state)
                return job
            updated = await self._transition(store, job, state, now, **changes)
        self._log_transition(job.state, updated)
        return updated

    async def renew_result_link(self, job_id: int, result: TaskResult) -> Job:
        """Store a fresh link to a finished video (signed links expire; the video does not).

        Only the link changes: the job stays where it is and no ledger row is written.
        """
        now = self._now()
        video = result.video if result.succeeded else None
        async with self._db.transaction() as store:
            job = await _load(store, job_id)
            if video is None or not video.video_url or job.state not in CHARGED_STATES:
                return job
            expires = now + timedelta(seconds=video.video_url_ttl) if video.video_url_ttl else None
            return await store.update_job(
                job.id, now, result_url=video.video_url, result_expires_at=expires
            )

    async def retry_delivery_later(self, job_id: int, seconds: float) -> Job:
        now = self._now()
        async with self._db.transaction() as store:
            job = await _load(store, job_id)
            if job.state is not JobState.SUCCEEDED:
                return job
            return await store.update_job(
                job_id,
                now,
                attempts=job.attempts + 1,
                next_poll_at=now + timedelta(seconds=max(0.0, seconds)),
            )

    async def expire_overdue(self) -> list[Job]:
        """End jobs that will not finish: no answer in the configured time (EXPIRED), or a
        submission whose outcome stayed unknown and is no longer in flight (LOST). Both
        release their holds."""
        now = self._now()
        s = self._settings
        changed: list[tuple[JobState, Job]] = []
        async with self._db.transaction() as store:
            for off_peak, minutes in (
                (False, s.job_timeout_minutes),
                (True, s.off_peak_job_timeout_minutes),
            ):
                cutoff = now - timedelta(minutes=minutes)
                for job in await store.active_jobs_created_before(cutoff, off_peak=off_peak):
                    if job.id in self._in_flight:
                        continue
                    if job.task_id is None:
                        changed.append((job.state, await self._lose(store, job, now)))
                        continue
                    await self._release(store, job, "no answer in time", now)
                    changed.append(
                        (
                            job.state,
                            await self._transition(
                                store,
                                job,
                                JobState.EXPIRED,
                                now,
                                failure_reason=(
                                    "The video service gave no result within "
                                    f"{_span(minutes)}, so the job was given up. "
                                    f"Your {_credits(job.price)} were returned."
                                ),
                            ),
                        )
                    )
            unknown_cutoff = (
                now - timedelta(seconds=s.submit_timeout_seconds) - UNKNOWN_OUTCOME_GRACE
            )
            for job in await store.jobs_in_states([JobState.SUBMITTING]):
                if (
                    job.id in self._in_flight
                    or job.task_id is not None
                    or job.created_at >= unknown_cutoff
                ):
                    continue
                changed.append((job.state, await self._lose(store, job, now)))
        for before, job in changed:
            self._log_transition(before, job)
        return [job for _, job in changed]

    # --- reading ------------------------------------------------------------------------

    async def history(self, guild_id: int, user_id: int, limit: int = 10) -> list[Job]:
        async with self._db.read() as store:
            return await store.member_jobs(guild_id, user_id, max(1, limit))

    async def status(self, job_id: int, guild_id: int, user_id: int, is_moderator: bool) -> Job:
        """A job as the asking member may see it: their own, or any in the guild for a mod."""
        job = await self.get_job(job_id)
        if job is None or job.guild_id != guild_id or (job.user_id != user_id and not is_moderator):
            raise Refusal(
                f"There is no job #{job_id} of yours on this server. "
                "Check the number in your history.",
                code="not_found",
            )
        return job

    async def balance(self, guild_id: int, user_id: int) -> Balance:
        now = self._now()
        async with self._db.read() as store:
            guild = await store.guild_settings(guild_id, self._defaults())
            return await self._balance_in(store, guild, guild_id, user_id, now)

    async def typical_price(self, guild_id: int) -> int:
        """The median price of the guild's recent jobs, else of a default video."""
        async with self._db.read() as store:
            prices = await store.recent_prices(guild_id, TYPICAL_PRICE_SAMPLE)
            guild = await store.guild_settings(guild_id, self._defaults())
        if prices:
            return int(statistics.median_low(prices))
        names = [m for m in (guild.enabled_models or list(CATALOG)) if m in CATALOG]
        name = names[0] if names else next(iter(CATALOG))
        return price_of_body(name, {}, self._settings)

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        async with self._db.read() as store:
            return await store.guild_settings(guild_id, self._defaults())

    async def ledger(
        self, guild_id: int, member_id: int | None = None, page: int = 0, per_page: int = 10
    ) -> LedgerPage:
        """The guild's (or one member's) ledger, newest first; past the end: the last page."""
        async with self._db.read() as store:
            return await store.ledger_page(guild_id, member_id, page, max(1, min(per_page, 50)))

    # --- moderator operations (each writes a ledger row with the moderator as actor) -----

    async def set_allowance(
        self, guild_id: int, member_id: int, credits: int | None, actor_id: int
    ) -> Balance:
        """Override a member's allowance per period: a number, or None for unlimited."""
        if credits is not None and credits < 0:
            raise Refusal("An allowance cannot be negative.", code="invalid_request")
        return await self._change_allowance(
            guild_id, member_id, actor_id, allowance=credits, unlimited=credits is None
        )

    async def clear_allowance(self, guild_id: int, member_id: int, actor_id: int) -> Balance:
        """Drop a member's override: they follow the server default again."""
        return await self._change_allowance(
            guild_id, member_id, actor_id, allowance=None, unlimited=False
        )

    async def _change_allowance(
        self,
        guild_id: int,
        member_id: int,
        actor_id: int,
        *,
        allowance: int | None,
        unlimited: bool,
    ) -> Balance:
        now = self._now()
        async with self._db.transaction() as store:
            guild = await store.guild_settings(guild_id, self._defaults())
            quota = await store.member_quota(guild_id, member_id)
            await store.save_member_quota(
                quota.model_copy(update={"allowance": allowance, "unlimited": unlimited}), now
            )
            if unlimited or allowance is not None:
                amount = allowance or 0
                reason = f"allowance set to {describe_allowance(allowance, guild.period)}"
            else:
                amount = guild.allowance
                reason = (
                    "allowance back to the server default "
                    f"({describe_allowance(guild.allowance, guild.period)})"
                )
            await store.add_ledger(
                guild_id=guild_id,
                user_id=member_id,
                kind="set",
                amount=amount,
                actor=str(actor_id),
                reason=reason,
                at=now,
            )
            return await self._balance_in(store, guild, guild_id, member_id, now)

    async def grant_bonus(
        self, guild_id: int, member_id: int, credits: int, reason: str, actor_id: int
    ) -> Balance:
        """Add one-time bonus credits (spent after the period allowance; never reset).

        A negative grant takes unused bonus away, never below zero.
        """
        if credits == 0:
            raise Refusal("Give a number of credits other than 0.", code="invalid_request")
        now = self._now()
        async with self._db.transaction() as store:
            guild = await store.guild_settings(guild_id, self._defaults())
            amount = credits
            if credits < 0:
                usage = await store.member_usage(guild_id, member_id, None)
                amount = -min(-credits, bonus_removable(usage))
                if amount == 0:
                    raise Refusal(
                        "This member has no unused bonus credits to take away.",
                        code="invalid_request",
                    )
            await store.add_ledger(
                guild_id=guild_id,
                user_id=member_id,
                kind="grant",
                amount=amount,
                actor=str(actor_id),
                reason=_clip(reason.strip(), 200) or ("bonus" if amount > 0 else "bonus removed"),
                at=now,
            )
            return await self._balance_in(store, guild, guild_id, member_id, now)

    async def reset_usage(self, guild_id: int, member_id: int, actor_id: int) -> Balance:
        """Give back this period's committed use (what is still held stays held)."""
        now = self._now()
        async with self._db.transaction() as store:
            guild = await store.guild_settings(guild_id, self._defaults())
            usage = await store.member_usage(guild_id, member_id, period_start(guild.period, now))
            await store.add_ledger(
                guild_id=guild_id,
                user_id=member_id,
                kind="reset",
                amount=resettable(usage),
                actor=str(actor_id),
                reason="usage of this period reset",
                at=now,
            )
            return await self._balance_in(store, guild, guild_id, member_id, now)

    async def block(
        self, guild_id: int, member_id: int, actor_id: int, reason: str = ""
    ) -> Balance:
        """Stop a member from starting videos (running ones finish)."""
        return await self._set_blocked(guild_id, member_id, actor_id, True, reason)

    async def unblock(
        self, guild_id: int, member_id: int, actor_id: int, reason: str = ""
    ) -> Balance:
        return await self._set_blocked(guild_id, member_id, actor_id, False, reason)

    async def _set_blocked(
        self, guild_id: int, member_id: int, actor_id: int, blocked: bool, reason: str
    ) -> Balance:
        now = self._now()
        async with self._db.transaction() as store:
            guild = await store.guild_settings(guild_id, self._defaults())
            quota = await store.member_quota(guild_id, member_id)
            await store.save_member_quota(quota.model_copy(update={"blocked": blocked}), now)
            await store.add_ledger(
                guild_id=guild_id,
                user_id=member_id,
                kind="block" if blocked else "unblock",
                amount=0,
                actor=str(actor_id),
                reason=_clip(reason.strip(), 200) or ("blocked" if blocked else "unblocked"),
                at=now,
            )
            return await self._balance_in(store, guild, guild_id, member_id, now)

    async def set_guild_default(
        self, guild_id: int, credits: int, period: Period, actor_id: int
    ) -> GuildSettings:
        """The allowance every member without an override gets, and how often it renews."""
        if credits < 0:
            raise Refusal("An allowance cannot be negative.", code="invalid_request")
        if period not in PERIODS:
            raise Refusal(
                f"The period must be one of: {', '.join(PERIODS)}.", code="invalid_request"
            )
        now = self._now()
        async with self._db.transaction() as store:
            await store.update_guild_settings(guild_id, now, allowance=credits, period=period)
            await store.add_ledger(
                guild_id=guild_id,
                user_id=None,
                kind="default",
                amount=credits,
                actor=str(actor_id),
                reason=f"server default set to {describe_allowance(credits, period)}",
                at=now,
            )
            return await store.guild_settings(guild_id, self._defaults())

    async def update_guild_settings(
        self,
        guild_id: int,
        actor_id: int,
        *,
        allowed_channels: Iterable[int] | Unset = UNSET,
        max_concurrent: int | Unset = UNSET,
        enabled_models: Iterable[str] | Unset | None = UNSET,
        daily_cap: int | Unset | None = UNSET,
        expected: GuildSettings | None = None,
    ) -> GuildSettings:
        """Change the given settings only. `enabled_models=None` enables every model,
        `allowed_channels=[]` allows every channel, `daily_cap=None` removes the cap.

        `expected`: the settings the change was computed from (e.g. a list with one channel
        added); if another moderator changed them meanwhile, nothing is written.
        """
        notes: list[str] = []
        channels: list[int] | Unset = UNSET
        models: list[str] | Unset | None = UNSET
        if not isinstance(allowed_channels, Unset):
            channels = sorted({int(c) for c in allowed_channels})
            notes.append(
                "channels: " + (", ".join(f"<#{c}>" for c in channels) if channels else "all")
            )
        if not isinstance(max_concurrent, Unset):
            if not 1 <= max_concurrent <= MAX_CONCURRENT_LIMIT:
                raise Refusal(
                    f"Running jobs per member must be between 1 and {MAX_CONCURRENT_LIMIT}.",
                    code="invalid_request",
                )
            notes.append(f"running jobs per member: {max_concurrent}")
        if not isinstance(enabled_models, Unset):
            if enabled_models is None:
                models = None
                notes.append("models: all")
            else:
                models = list(dict.fromkeys(enabled_models))
                unknown = [m for m in models if m not in CATALOG]
                if unknown:
                    raise Refusal(
                        f"Unknown model {', '.join(unknown)}. "
                        f"Choose from: {', '.join(sorted(CATALOG))}.",
                        code="model_unknown",
                    )
                if not models:
                    raise Refusal(
                        "Enable at least one model (or all of them).", code="invalid_request"
                    )
                notes.append(f"models: {', '.join(models)}")
        if not isinstance(daily_cap, Unset):
            if daily_cap is not None and daily_cap < 0:
                raise Refusal("A daily cap cannot be negative.", code="invalid_request")
            notes.append("daily cap: " + ("none" if daily_cap is None else _credits(daily_cap)))
        if not notes:
            async with self._db.read() as store:
                return await store.guild_settings(guild_id, self._defaults())
        now = self._now()
        async with self._db.transaction() as store:
            if expected is not None and expected != await store.guild_settings(
                guild_id, self._defaults()
            ):
                raise Refusal(
                    "Another moderator changed these settings just now; nothing was changed. "
                    "Look at `/video-settings show` and try again.",
                    code="conflict",
                )
            await store.update_guild_settings(
                guild_id,
                now,
                allowed_channels=channels,
                max_concurrent=max_concurrent,
                enabled_models=models,
                daily_cap=daily_cap,
            )
            await store.add_ledger(
                guild_id=guild_id,
                user_id=None,
                kind="default",
                amount=0,
                actor=str(actor_id),
                reason="server settings: " + "; ".join(notes),
                at=now,
            )
            return await store.guild_settings(guild_id, self._defaults())


def _sentence(text: str) -> str:
    # Not capitalised: the sentence starts with an option's name, which is lower case.
    text = text.strip()
    if not text:
        return "The request is not valid."
    return text if text.endswith((".", "!", "?")) else text + "."
