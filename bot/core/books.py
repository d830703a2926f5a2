"""What every part of the core reads the same way: the clock, a guild's settings with the
operator's defaults, and a member's balance, each inside the caller's transaction."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from bot.core.quota import compute_balance, effective_allowance, period_start, utcnow
from storage import Balance, Database, GuildDefaults, GuildSettings, Job, JobState, Store

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)


class Books:
    """The database, the settings and the clock, shared by submitting, lifecycle and
    moderation."""

    def __init__(
        self, db: Database, settings: Settings, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.settings = settings
        self._clock = clock
        # Who this process is in leases: its name, and a new id each start (so a process
        # started again knows its earlier life's leases from a namesake's).
        self.owner = f"{settings.process_name}/{secrets.token_hex(4)}"
        # The jobs whose submission is running in this process right now: the lifecycle
        # leaves them alone, and the leases keep them this process's for as long.
        self.in_flight: set[int] = set()

    def now(self) -> datetime:
        now = self._clock()
        if now.utcoffset() is None:
            raise ValueError("the clock must return timezone-aware datetimes")
        return now

    def defaults(self) -> GuildDefaults:
        s = self.settings
        return GuildDefaults(
            allowance=s.default_allowance,
            period=s.default_period,
            max_concurrent=s.default_max_concurrent_jobs,
        )

    async def guild(self, store: Store, guild_id: int) -> GuildSettings:
        return await store.guild_settings(guild_id, self.defaults())

    async def balance(
        self,
        store: Store,
        guild: GuildSettings,
        user_id: int,
        now: datetime,
        role_ids: Iterable[int] = (),
    ) -> Balance:
        """A member's balance as the ledger says it is now; `role_ids` are the roles the
        member holds (as the platform says), for role allowances."""
        quota = await store.member_quota(guild.guild_id, user_id)
        usage = await store.member_usage(guild.guild_id, user_id, period_start(guild.period, now))
        allowance = effective_allowance(quota, guild.allowance, guild.role_allowances, role_ids)
        return compute_balance(
            allowance=allowance,
            blocked=quota.blocked,
            period=guild.period,
            usage=usage,
            now=now,
        )


def member_key(guild_id: int, user_id: int) -> str:
    """The lock that serialises changes to one member's credits, across processes."""
    return f"member:{guild_id}:{user_id}"


def guild_key(guild_id: int) -> str:
    """The lock that serialises a guild's settings and its daily spending."""
    return f"guild:{guild_id}"


OPERATOR_KEY = "operator"  # the spending of every guild together (the operator's cap)


def log_transition(before: JobState | None, job: Job) -> None:
    """One line per state change, the same for every transition of every job."""
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
