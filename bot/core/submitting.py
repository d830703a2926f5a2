"""Submitting: quote a request, hold its price and send it; re-roll a finished one.

How a crash at each step of `submit` is resolved:

1. Before the first transaction commits: nothing was written; nothing was sent.
2. After it commits, before or during the API call: the job is SUBMITTING without a task
   id. Nothing can tell whether the service accepted it, and re-sending could make (and
   bill) the video twice, so it is never re-sent: `Lifecycle.recover` at the next start
   marks it LOST and releases the hold.
3. After the API answered, before the second transaction commits: the same as 2 (the task
   id is in the log line "task accepted" for the operator to reconcile by hand).
4. After the second transaction: QUEUED with a task id; the poller carries on from there.
An outcome the API itself could not tell (timeout, 5xx) stays SUBMITTING with a
`failure_reason` saying so, and is settled (LOST, released) by recovery or, while the bot
keeps running, by `Lifecycle.expire_overdue` once the submission is no longer in flight.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from bot.api import errors
from bot.api.models import SEED_MAX, RequestValidationError, describe_validation_error
from bot.core import refusals
from bot.core.books import OPERATOR_KEY, Books, guild_key, log_transition, member_key
from bot.core.catalog import CATALOG, JobRequest, ModelSpec, get_model, request_of
from bot.core.durations import bucket_of
from bot.core.pricing import price_of
from bot.core.quota import day_start, split_hold
from storage import SYSTEM_ACTOR, Balance, GuildSettings, InputRef, Job, JobState, NewJob, Store
from storage.models import LedgerPool

if TYPE_CHECKING:
    from bot.api.endpoints import Endpoint
    from bot.api.models import VideoRequest
    from bot.core.lifecycle import Lifecycle

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/vidu"  # the job's own token follows

# Errors after which the service may or may not have started the video.
OUTCOME_UNKNOWN = (
    errors.SubmissionOutcomeUnknown,
    errors.ServerError,
    errors.APITimeoutError,
    errors.MalformedResponseError,
)


class VideoSubmitter(Protocol):
    """What submitting needs of the API client (`bot.api.VideoAPI` is one)."""

    async def submit(
        self, endpoint: Endpoint, request: VideoRequest, *, webhook_url: str | None = None
    ) -> str: ...


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    guild_id: int
    channel_id: int
    user_id: int
    model: str
    params: Mapping[str, Any]  # the request fields, as the model's request class takes them
    inputs: Sequence[InputRef] = field(default_factory=tuple)
    reroll_of: int | None = None
    role_ids: Sequence[int] = ()  # the member's roles, for role allowances


@dataclass(frozen=True, slots=True)
class Quote:
    price: int
    balance: Balance
    affordable: bool


@dataclass(frozen=True, slots=True)
class _Prepared:
    spec: ModelSpec
    request: JobRequest
    price: int


# Re-signs a job's input links (keyed by the stored ones); raises InputsGone if they are gone.
RefreshInputs = Callable[[Job], Awaitable[Mapping[str, str]]]


def replace_urls(value: Any, urls: Mapping[str, str]) -> Any:
    """A deep copy of an API body with every input link swapped for its fresh one."""
    if isinstance(value, dict):
        return {key: replace_urls(item, urls) for key, item in value.items()}
    if isinstance(value, list):
        return [replace_urls(item, urls) for item in value]
    if isinstance(value, str):
        return urls.get(value, value)
    return value


class Submitting:
    def __init__(self, books: Books, api: VideoSubmitter, lifecycle: Lifecycle) -> None:
        self._books = books
        self._api = api
        self._lifecycle = lifecycle
        self._settings = books.settings
        base = books.settings.webhook_public_url
        # Where the video service may call back when a video is done (a hint only).
        self._webhook_base = None if base is None else str(base).rstrip("/") + WEBHOOK_PATH
        self._rerolling: set[tuple[int, int]] = set()  # (job, member) re-rolls under way

    def _prepare(self, model: str, params: Mapping[str, Any]) -> _Prepared:
        try:
            spec = get_model(model)
        except ValueError:
            raise refusals.UnknownModel(model, tuple(sorted(CATALOG))) from None
        try:
            request = request_of(spec.name, dict(params))
        except RequestValidationError as error:
            raise refusals.InvalidRequest(_sentence(describe_validation_error(error))) from None
        return _Prepared(spec, request, price_of(spec.name, request, self._settings))

    @staticmethod
    def _check_model_enabled(guild: GuildSettings, spec: ModelSpec) -> None:
        if guild.enabled_models is not None and spec.name not in guild.enabled_models:
            enabled = tuple(m for m in guild.enabled_models if m in CATALOG)
            raise refusals.ModelDisabled(spec.name, enabled)

    async def quote(
        self,
        guild_id: int,
        user_id: int,
        model: str,
        params: Mapping[str, Any],
        role_ids: Sequence[int] = (),
    ) -> Quote:
        """The price of a request and the member's balance; spends nothing."""
        prepared = self._prepare(model, params)
        now = self._books.now()
        async with self._books.db.read() as store:
            guild = await self._books.guild(store, guild_id)
            self._check_model_enabled(guild, prepared.spec)
            balance = await self._books.balance(store, guild, user_id, now, role_ids)
        affordable = not balance.blocked and split_hold(prepared.price, balance) is not None
        return Quote(price=prepared.price, balance=balance, affordable=affordable)

    async def submit(self, request: SubmitRequest) -> Job:
        """Check, hold, create the job, send it; see the module docstring for crash safety.

        Returns the job: QUEUED (accepted), REJECTED (refused by the API; hold released) or
        SUBMITTING with a `failure_reason` (outcome unknown; settled later, never re-sent).
        Raises a `Refusal` when any check fails (nothing is written then).
        """
        prepared = self._prepare(request.model, request.params)
        now = self._books.now()
        async with self._books.db.transaction() as store:
            job = await self._hold(store, request, prepared, now)
        # Marked only once the row is committed (no await between): a cancelled COMMIT must
        # not leave an id marked that would shield the job from recovery forever.
        with self._lifecycle.in_flight(job.id):
            log_transition(None, job)
            return await self._send(job, prepared)

    async def _hold(
        self, store: Store, request: SubmitRequest, prepared: _Prepared, now: datetime
    ) -> Job:
        """Every check, then the job row and its holds, all in the caller's transaction."""
        # Two submissions racing for the last credits (or the last of a daily cap) must
        # not both see them free, whichever process each arrives at. A server's members
        # wait for each other only where its daily cap makes them compete; without one
        # they share its lock, so a change of its settings (a cap turned on) still waits
        # for them, and the submissions after it see theirs.
        guild = await self._books.guild(store, request.guild_id)
        keys = [member_key(request.guild_id, request.user_id)]
        shared: list[str] = []
        (keys if guild.daily_cap is not None else shared).append(guild_key(request.guild_id))
        if self._settings.operator_daily_cap is not None:
            keys.append(OPERATOR_KEY)
        await store.lock(*keys, shared=shared)
        self._check_model_enabled(guild, prepared.spec)
        if guild.allowed_channels and request.channel_id not in guild.allowed_channels:
            raise refusals.ChannelNotAllowed(tuple(guild.allowed_channels))
        balance = await self._books.balance(store, guild, request.user_id, now, request.role_ids)
        if balance.blocked:
            raise refusals.Blocked()
        running = await store.count_active_jobs(request.guild_id, request.user_id)
        if running >= guild.max_concurrent:
            raise refusals.TooManyJobs(running, guild.max_concurrent)
        split = split_hold(prepared.price, balance)
        if split is None:
            raise refusals.NotEnoughCredits(
                prepared.price, balance.available or 0, balance.resets_at
            )
        await self._check_caps(store, guild, prepared.price, now)
        if request.reroll_of is not None:
            original = await store.get_job(request.reroll_of)
            if original is None or original.guild_id != request.guild_id:
                raise refusals.JobNotFound(request.reroll_of, of_member=False)
        off_peak = bool(getattr(prepared.request, "off_peak", False))
        draft = NewJob(
            guild_id=request.guild_id,
            channel_id=request.channel_id,
            user_id=request.user_id,
            model=prepared.spec.name,
            params=prepared.request.to_body(),
            inputs=list(request.inputs),
            price=prepared.price,
            off_peak=off_peak,
            reroll_of=request.reroll_of,
            bucket=bucket_of(
                prepared.spec.name, prepared.request.resolution, off_peak, prepared.request.duration
            ),
            webhook_token=secrets.token_urlsafe(24) if self._webhook_base else None,
        )
        # Given up (LOST, never re-sent) if its outcome stays unknown past this; in flight
        # here it is left alone until then.
        give_up = now + self._lifecycle.unconfirmed_wait()
        # Leased to this process until then too: no other process takes the submission
        # for one cut off by a stop while this one is still waiting for the service.
        job = await store.insert_job(
            draft.model_copy(
                update={
                    "give_up_at": give_up,
                    "lease_owner": self._books.owner,
                    "lease_until": give_up,
                }
            ),
            state=JobState.SUBMITTING,
            at=now,
        )
        # Every job gets at least one hold row (even a free one), so "every hold ends as a
        # commit or a release" describes every job.
        parts: list[tuple[LedgerPool, int]] = [("period", split.period), ("bonus", split.bonus)]
        for pool, amount in parts:
            if amount > 0 or (pool == "period" and split.total == 0):
                await store.add_ledger(
                    guild_id=request.guild_id,
                    user_id=request.user_id,
                    job_id=job.id,
                    kind="hold",
                    pool=pool,
                    amount=amount,
                    actor=SYSTEM_ACTOR,
                    reason=f"job #{job.id} ({prepared.spec.name})",
                    at=now,
                )
        return job

    async def _check_caps(
        self, store: Store, guild: GuildSettings, price: int, now: datetime
    ) -> None:
        today = day_start(now)
        tomorrow = today + timedelta(days=1)
        if guild.daily_cap is not None:
            spent = await store.spent_since(today, guild.guild_id)
            if spent + price > guild.daily_cap:
                left = max(0, guild.daily_cap - spent)
                raise refusals.GuildCapReached(guild.daily_cap, left, price, tomorrow)
        cap = self._settings.operator_daily_cap
        if cap is not None:
            spent = await store.spent_since(today)
            if spent + price > cap:
                raise refusals.OperatorCapReached(price, tomorrow)

    async def _send(self, job: Job, prepared: _Prepared) -> Job:
        webhook = (
            f"{self._webhook_base}/{job.webhook_token}"
            if self._webhook_base and job.webhook_token
            else None
        )
        try:
            task_id = await self._api.submit(
                prepared.spec.endpoint, prepared.request, webhook_url=webhook
            )
        except OUTCOME_UNKNOWN as error:
            # The request may have reached the service: never send it again.
            log.warning("job %s: submission outcome unknown: %s", job.id, error)
            return await self._lifecycle.outcome_unknown(job.id, error.member_message)
        except errors.VideoAPIError as error:
            log.info("job %s: submission refused: %s", job.id, error)
            return await self._lifecycle.rejected(job.id, error.member_message)
        except Exception:
            log.exception("job %s: unexpected error while submitting", job.id)
            return await self._lifecycle.outcome_unknown(job.id, None)
        log.info("job %s guild %s task %s: task accepted", job.id, job.guild_id, task_id)
        return await self._lifecycle.accepted(job.id, task_id)

    async def reroll(
        self,
        job_id: int,
        *,
        guild_id: int,
        channel_id: int,
        user_id: int,
        refresh_inputs: RefreshInputs,
        role_ids: Sequence[int] = (),
    ) -> Job:
        """The same request as job `job_id` with a new seed, charged to `user_id`.

        `refresh_inputs` is the front end's: it re-signs the input links on its platform.
        A second click by the same member while the first is under way is refused, so a
        double click never pays for two videos.
        """
        click = (job_id, user_id)
        if click in self._rerolling:
            raise refusals.RerollBusy(job_id)
        self._rerolling.add(click)
        try:
            original = await self._lifecycle.get_job(job_id)
            if original is None or original.guild_id != guild_id:
                raise refusals.JobNotFound(job_id, of_member=False)
            urls = await refresh_inputs(original)
            params = {**replace_urls(original.params, urls), "seed": random.randint(1, SEED_MAX)}
            inputs = [
                ref.model_copy(update={"url": urls.get(ref.url, ref.url)})
                for ref in original.inputs
            ]
            return await self.submit(
                SubmitRequest(
                    guild_id=guild_id,
                    channel_id=channel_id,
                    user_id=user_id,
                    model=original.model,
                    params=params,
                    inputs=inputs,
                    reroll_of=original.id,
                    role_ids=role_ids,
                )
            )
        finally:
            self._rerolling.discard(click)


def _sentence(text: str) -> str:
    # Not capitalised: the sentence starts with an option's name, which is lower case.
    text = text.strip()
    if not text:
        return "The request is not valid."
    return text if text.endswith((".", "!", "?")) else text + "."
