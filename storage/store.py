"""Every SQL statement of the bot, behind typed methods.

A `Store` is handed out by `Database.transaction()` (writable) or `Database.read()`; it is
only valid inside that block. The methods are deliberately small and policy-free: what a
balance means and when a hold may be placed is decided in `bot.quota` / `bot.jobs`, which
call several of these inside one transaction.
"""

from __future__ import annotations

import enum
import json
import math
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal

import aiosqlite

from storage.models import (
    ACTIVE_STATES,
    GuildDefaults,
    GuildSettings,
    InputRef,
    Job,
    JobState,
    LedgerEntry,
    LedgerKind,
    LedgerPage,
    LedgerPool,
    MemberQuota,
    MemberUsage,
    NewJob,
    Period,
)


class Unset(enum.Enum):
    UNSET = "UNSET"


UNSET: Final = Unset.UNSET
"""Marks a keyword argument that was not given (where None is a meaningful value)."""

_ACTIVE = tuple(state.value for state in ACTIVE_STATES)
_JOB_COLUMNS = (
    "id, guild_id, channel_id, user_id, model, params, inputs, price, off_peak, state, task_id, "
    "progress, eta, next_poll_at, attempts, card_message_id, result_url, result_expires_at, "
    "failure_reason, delivered_message_id, reroll_of, created_at, updated_at, finished_at"
)
_LEDGER_COLUMNS = "id, guild_id, user_id, job_id, kind, pool, amount, actor, reason, created_at"
# Columns a transition may change; anything else about a job is fixed at creation.
_MUTABLE_JOB_COLUMNS = frozenset(
    {
        "state",
        "task_id",
        "progress",
        "eta",
        "next_poll_at",
        "attempts",
        "card_message_id",
        "result_url",
        "result_expires_at",
        "failure_reason",
        "delivered_message_id",
        "finished_at",
    }
)


def to_db(moment: datetime) -> str:
    """A fixed-width UTC text form, so comparing the strings compares the times."""
    if moment.utcoffset() is None:
        raise ValueError("refusing to store a naive datetime; use timezone-aware UTC")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def from_db(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _opt_from_db(text: str | None) -> datetime | None:
    return None if text is None else from_db(text)


def _db_value(value: object) -> object:
    if isinstance(value, datetime):
        return to_db(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bool):
        return int(value)
    return value


class ReadOnlyStoreError(RuntimeError):
    """A write was attempted through a store handed out by `Database.read()`."""


class Store:
    def __init__(self, connection: aiosqlite.Connection, *, writable: bool) -> None:
        self._conn = connection
        self.writable = writable

    # --- plumbing ---------------------------------------------------------------------

    async def _all(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        rows = await self._conn.execute_fetchall(sql, tuple(params))
        return list(rows)

    async def _one(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Row | None:
        rows = await self._all(sql, params)
        return rows[0] if rows else None

    async def _write(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run a write; returns the number of rows changed."""
        if not self.writable:
            raise ReadOnlyStoreError("this store is read-only; use Database.transaction()")
        cursor = await self._conn.execute(sql, tuple(params))
        try:
            return cursor.rowcount
        finally:
            await cursor.close()

    async def _insert(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run an INSERT; returns the new row's id."""
        if not self.writable:
            raise ReadOnlyStoreError("this store is read-only; use Database.transaction()")
        cursor = await self._conn.execute(sql, tuple(params))
        try:
            if cursor.lastrowid is None:
                raise RuntimeError("INSERT returned no row id")
            return cursor.lastrowid
        finally:
            await cursor.close()

    # --- meta -------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        row = await self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    async def set_meta(self, key: str, value: str) -> None:
        await self._write(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # --- guild settings ---------------------------------------------------------------

    async def guild_settings(self, guild_id: int, defaults: GuildDefaults) -> GuildSettings:
        row = await self._one("SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,))
        if row is None:
            return GuildSettings(
                guild_id=guild_id,
                allowance=defaults.allowance,
                period=defaults.period,
                max_concurrent=defaults.max_concurrent,
            )
        enabled = row["enabled_models"]
        return GuildSettings(
            guild_id=guild_id,
            allowance=defaults.allowance if row["allowance"] is None else row["allowance"],
            period=defaults.period if row["period"] is None else row["period"],
            max_concurrent=(
                defaults.max_concurrent if row["max_concurrent"] is None else row["max_concurrent"]
            ),
            allowed_channels=[int(c) for c in json.loads(row["allowed_channels"])],
            enabled_models=None if enabled is None else [str(m) for m in json.loads(enabled)],
            daily_cap=row["daily_cap"],
        )

    async def update_guild_settings(
        self,
        guild_id: int,
        at: datetime,
        *,
        allowance: int | Unset = UNSET,
        period: Period | Unset = UNSET,
        max_concurrent: int | Unset = UNSET,
        allowed_channels: Iterable[int] | Unset = UNSET,
        enabled_models: Iterable[str] | Unset | None = UNSET,
        daily_cap: int | Unset | None = UNSET,
    ) -> None:
        """Change only the settings given; the rest keep their value (or stay on default)."""
        row = await self._one("SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,))
        current: dict[str, Any] = (
            dict(row)
            if row is not None
            else {
                "allowance": None,
                "period": None,
                "max_concurrent": None,
                "allowed_channels": "[]",
                "enabled_models": None,
                "daily_cap": None,
            }
        )
        if not isinstance(allowance, Unset):
            current["allowance"] = allowance
        if not isinstance(period, Unset):
            current["period"] = period
        if not isinstance(max_concurrent, Unset):
            current["max_concurrent"] = max_concurrent
        if not isinstance(allowed_channels, Unset):
            current["allowed_channels"] = json.dumps(sorted({int(c) for c in allowed_channels}))
        if not isinstance(enabled_models, Unset):
            current["enabled_models"] = (
                None if enabled_models is None else json.dumps(list(dict.fromkeys(enabled_models)))
            )
        if not isinstance(daily_cap, Unset):
            current["daily_cap"] = daily_cap
        await self._write(
            "INSERT INTO guild_settings (guild_id, allowance, period, max_concurrent, "
            "allowed_channels, enabled_models, daily_cap, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (guild_id) DO UPDATE SET allowance = excluded.allowance, "
            "period = excluded.period, max_concurrent = excluded.max_concurrent, "
            "allowed_channels = excluded.allowed_channels, "
            "enabled_models = excluded.enabled_models, daily_cap = excluded.daily_cap, "
            "updated_at = excluded.updated_at",
            (
                guild_id,
                current["allowance"],
                current["period"],
                current["max_concurrent"],
                current["allowed_channels"],
                current["enabled_models"],
                current["daily_cap"],
                to_db(at),
            ),
        )

    # --- member quota settings --------------------------------------------------------

    async def member_quota(self, guild_id: int, user_id: int) -> MemberQuota:
        row = await self._one(
            "SELECT allowance, unlimited, blocked FROM member_quota "
            "WHERE guild_id = ? AND user_id = ?",
            (guild_id, user_id),
        )
        if row is None:
            return MemberQuota(guild_id=guild_id, user_id=user_id)
        return MemberQuota(
            guild_id=guild_id,
            user_id=user_id,
            allowance=row["allowance"],
            unlimited=bool(row["unlimited"]),
            blocked=bool(row["blocked"]),
        )

    async def save_member_quota(self, quota: MemberQuota, at: datetime) -> None:
        await self._write(
            "INSERT INTO member_quota (guild_id, user_id, allowance, unlimited, blocked, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (guild_id, user_id) DO UPDATE SET allowance = excluded.allowance, "
            "unlimited = excluded.unlimited, blocked = excluded.blocked, "
            "updated_at = excluded.updated_at",
            (
                quota.guild_id,
                quota.user_id,
                quota.allowance,
                int(quota.unlimited),
                int(quota.blocked),
                to_db(at),
            ),
        )

    # --- ledger -----------------------------------------------------------------------

    async def add_ledger(
        self,
        *,
        guild_id: int,
        user_id: int | None,
        kind: LedgerKind,
        amount: int,
        actor: str,
        at: datetime,
        reason: str = "",
        job_id: int | None = None,
        pool: LedgerPool | None = None,
    ) -> LedgerEntry:
        entry_id = await self._insert(
            f"INSERT INTO ledger ({_LEDGER_COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (guild_id, user_id, job_id, kind, pool, amount, actor, reason, to_db(at)),
        )
        return LedgerEntry(
            id=entry_id,
            guild_id=guild_id,
            user_id=user_id,
            job_id=job_id,
            kind=kind,
            pool=pool,
            amount=amount,
            actor=actor,
            reason=reason,
            created_at=from_db(to_db(at)),
        )

    async def member_usage(
        self, guild_id: int, user_id: int, since: datetime | None
    ) -> MemberUsage:
        """Sums for one member. Period holds count when placed at or after `since` (None:
        all time), whenever they are settled; bonus sums are over all time."""
        since_text = "" if since is None else to_db(since)
        rows = await self._all(
            "SELECT h.pool AS pool, s.kind AS settled, COALESCE(SUM(h.amount), 0) AS total "
            "FROM ledger AS h LEFT JOIN ledger AS s "
            "ON s.job_id = h.job_id AND s.pool = h.pool AND s.kind IN ('commit', 'release') "
            "WHERE h.kind = 'hold' AND h.guild_id = ? AND h.user_id = ? "
            "AND (h.pool = 'bonus' OR h.created_at >= ?) "
            "GROUP BY h.pool, s.kind",
            (guild_id, user_id, since_text),
        )
        sums = {(row["pool"], row["settled"]): int(row["total"]) for row in rows}
        unsettled = await self._one(
            "SELECT COALESCE(SUM(h.amount), 0) AS total FROM ledger AS h "
            "WHERE h.kind = 'hold' AND h.guild_id = ? AND h.user_id = ? AND NOT EXISTS ("
            "  SELECT 1 FROM ledger AS s WHERE s.job_id = h.job_id AND s.pool = h.pool "
            "  AND s.kind IN ('commit', 'release'))",
            (guild_id, user_id),
        )
        assert unsettled is not None
        other = await self._one(
            "SELECT COALESCE(SUM(amount), 0) AS granted FROM ledger "
            "WHERE guild_id = ? AND user_id = ? AND kind = 'grant'",
            (guild_id, user_id),
        )
        assert other is not None
        # A reset excuses what was committed before it, by holds placed in this window before
        # it. Derived from the rows themselves (ordered by id: the ledger is append-only), not
        # from the reset row's amount, so it stays right when the window changes (a new
        # period length) and never excuses what was committed after the reset.
        excused = await self._one(
            "SELECT COALESCE(SUM(h.amount), 0) AS total FROM ledger AS h "
            "JOIN ledger AS c ON c.job_id = h.job_id AND c.pool = h.pool AND c.kind = 'commit' "
            "WHERE h.kind = 'hold' AND h.pool = 'period' AND h.guild_id = ? AND h.user_id = ? "
            "AND h.created_at >= ? AND c.id < ("
            "  SELECT COALESCE(MAX(r.id), 0) FROM ledger AS r WHERE r.kind = 'reset' "
            "  AND r.guild_id = ? AND r.user_id = ? AND r.created_at >= ?)",
            (guild_id, user_id, since_text, guild_id, user_id, since_text),
        )
        assert excused is not None
        return MemberUsage(
            held_anytime=int(unsettled["total"]),
            period_held=sums.get(("period", None), 0),
            period_committed=sums.get(("period", "commit"), 0),
            period_reset=int(excused["total"]),
            bonus_granted=int(other["granted"]),
            bonus_held=sums.get(("bonus", None), 0),
            bonus_committed=sums.get(("bonus", "commit"), 0),
        )

    async def spent_since(self, since: datetime, guild_id: int | None = None) -> int:
        """Credits held or committed by holds placed at or after `since` (one guild, or all)."""
        sql = (
            "SELECT COALESCE(SUM(h.amount), 0) AS total FROM ledger AS h "
            "WHERE h.kind = 'hold' AND h.created_at >= ? "
            "AND NOT EXISTS (SELECT 1 FROM ledger AS r WHERE r.job_id = h.job_id "
            "AND r.pool = h.pool AND r.kind = 'release')"
        )
        params: list[object] = [to_db(since)]
        if guild_id is not None:
            sql += " AND h.guild_id = ?"
            params.append(guild_id)
        row = await self._one(sql, params)
        return 0 if row is None else int(row["total"])

    async def open_holds(self, job_id: int) -> list[LedgerEntry]:
        """The job's holds that have been neither committed nor released."""
        rows = await self._all(
            f"SELECT {_LEDGER_COLUMNS} FROM ledger AS h WHERE h.kind = 'hold' AND h.job_id = ? "
            "AND NOT EXISTS (SELECT 1 FROM ledger AS s WHERE s.job_id = h.job_id "
            "AND s.pool = h.pool AND s.kind IN ('commit', 'release')) ORDER BY h.id",
            (job_id,),
        )
        return [_ledger_entry(row) for row in rows]

    async def settle_holds(
        self,
        job_id: int,
        kind: Literal["commit", "release"],
        *,
        actor: str,
        reason: str,
        at: datetime,
    ) -> list[LedgerEntry]:
        """Commit or release every open hold of a job, one mirror row per pool.

        Settling twice writes nothing the second time (and the unique index would refuse it).
        """
        written = []
        for hold in await self.open_holds(job_id):
            written.append(
                await self.add_ledger(
                    guild_id=hold.guild_id,
                    user_id=hold.user_id,
                    job_id=job_id,
                    kind=kind,
                    pool=hold.pool,
                    amount=hold.amount,
                    actor=actor,
                    reason=reason,
                    at=at,
                )
            )
        return written

    async def job_ledger(self, job_id: int) -> list[LedgerEntry]:
        rows = await self._all(
            f"SELECT {_LEDGER_COLUMNS} FROM ledger WHERE job_id = ? ORDER BY id", (job_id,)
        )
        return [_ledger_entry(row) for row in rows]

    async def ledger_entries(
        self, guild_id: int | None = None, user_id: int | None = None
    ) -> list[LedgerEntry]:
        """Every row (oldest first), optionally for one guild and member: for audits."""
        clauses, params = _ledger_filter(guild_id, user_id)
        rows = await self._all(
            f"SELECT {_LEDGER_COLUMNS} FROM ledger {clauses} ORDER BY id", params
        )
        return [_ledger_entry(row) for row in rows]

    async def ledger_page(
        self, guild_id: int, user_id: int | None, page: int, per_page: int
    ) -> LedgerPage:
        """Newest first. A page past the end shows the last page."""
        per_page = max(1, per_page)
        clauses, params = _ledger_filter(guild_id, user_id)
        row = await self._one(f"SELECT count(*) AS n FROM ledger {clauses}", params)
        total = 0 if row is None else int(row["n"])
        pages = max(1, math.ceil(total / per_page))
        page = min(max(0, page), pages - 1)
        rows = await self._all(
            f"SELECT {_LEDGER_COLUMNS} FROM ledger {clauses} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, per_page, page * per_page],
        )
        return LedgerPage(
            entries=[_ledger_entry(r) for r in rows], page=page, pages=pages, total=total
        )

    # --- jobs -------------------------------------------------------------------------

    async def insert_job(self, new: NewJob, *, state: JobState, at: datetime) -> Job:
        now = to_db(at)
        job_id = await self._insert(
            "INSERT INTO jobs (guild_id, channel_id, user_id, model, params, inputs, price, "
            "off_peak, state, failure_reason, reroll_of, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                new.guild_id,
                new.channel_id,
                new.user_id,
                new.model,
                json.dumps(new.params, separators=(",", ":"), sort_keys=True),
                json.dumps([ref.model_dump() for ref in new.inputs], separators=(",", ":")),
                new.price,
                int(new.off_peak),
                state.value,
                new.failure_reason,
                new.reroll_of,
                now,
                now,
            ),
        )
        job = await self.get_job(job_id)
        assert job is not None
        return job

    async def get_job(self, job_id: int) -> Job | None:
        row = await self._one(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return None if row is None else _job(row)

    async def update_job(self, job_id: int, at: datetime, **changes: object) -> Job:
        """Change the given columns (and `updated_at`); returns the job as now stored."""
        unknown = set(changes) - _MUTABLE_JOB_COLUMNS
        if unknown:
            raise ValueError(f"job columns that cannot be changed: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in changes)
        values = [_db_value(value) for value in changes.values()]
        sets = f"{assignments}, updated_at = ?" if assignments else "updated_at = ?"
        count = await self._write(
            f"UPDATE jobs SET {sets} WHERE id = ?", [*values, to_db(at), job_id]
        )
        if count != 1:
            raise LookupError(f"no job {job_id}")
        job = await self.get_job(job_id)
        assert job is not None
        return job

    async def count_active_jobs(self, guild_id: int, user_id: int) -> int:
        row = await self._one(
            "SELECT count(*) AS n FROM jobs WHERE guild_id = ? AND user_id = ? "
            "AND state IN (?, ?, ?)",
            (guild_id, user_id, *_ACTIVE),
        )
        return 0 if row is None else int(row["n"])

    async def jobs_in_states(
        self, states: Iterable[JobState], *, limit: int | None = None
    ) -> list[Job]:
        wanted = [state.value for state in states]
        if not wanted:
            return []
        marks = ", ".join("?" for _ in wanted)
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state IN ({marks}) ORDER BY id"
        params: list[object] = list(wanted)
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [_job(row) for row in await self._all(sql, params)]

    async def jobs_due(self, now: datetime, limit: int) -> list[Job]:
        """Active jobs with a task id whose next poll time has come, most overdue first."""
        rows = await self._all(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state IN (?, ?, ?) AND task_id IS NOT NULL "
            "AND next_poll_at IS NOT NULL AND next_poll_at <= ? "
            "ORDER BY next_poll_at, id LIMIT ?",
            (*_ACTIVE, to_db(now), limit),
        )
        return [_job(row) for row in rows]

    async def deliveries_due(self, now: datetime, limit: int) -> list[Job]:
        rows = await self._all(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state = ? "
            "AND (next_poll_at IS NULL OR next_poll_at <= ?) "
            "ORDER BY next_poll_at, id LIMIT ?",
            (JobState.SUCCEEDED.value, to_db(now), limit),
        )
        return [_job(row) for row in rows]

    async def active_jobs_created_before(self, before: datetime, *, off_peak: bool) -> list[Job]:
        rows = await self._all(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state IN (?, ?, ?) AND off_peak = ? "
            "AND created_at < ? ORDER BY id",
            (*_ACTIVE, int(off_peak), to_db(before)),
        )
        return [_job(row) for row in rows]

    async def member_jobs(self, guild_id: int, user_id: int, limit: int) -> list[Job]:
        rows = await self._all(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE guild_id = ? AND user_id = ? "
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            (guild_id, user_id, limit),
        )
        return [_job(row) for row in rows]

    async def recent_prices(self, guild_id: int, limit: int) -> list[int]:
        rows = await self._all(
            "SELECT price FROM jobs WHERE guild_id = ? ORDER BY id DESC LIMIT ?",
            (guild_id, limit),
        )
        return [int(row["price"]) for row in rows]


def _ledger_filter(guild_id: int | None, user_id: int | None) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if guild_id is not None:
        clauses.append("guild_id = ?")
        params.append(guild_id)
    if user_id is not None:
        clauses.append("user_id = ?")
        params.append(user_id)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _ledger_entry(row: sqlite3.Row) -> LedgerEntry:
    return LedgerEntry(
        id=row["id"],
        guild_id=row["guild_id"],
        user_id=row["user_id"],
        job_id=row["job_id"],
        kind=row["kind"],
        pool=row["pool"],
        amount=row["amount"],
        actor=row["actor"],
        reason=row["reason"],
        created_at=from_db(row["created_at"]),
    )


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        user_id=row["user_id"],
        model=row["model"],
        params=json.loads(row["params"]),
        inputs=[InputRef.model_validate(item) for item in json.loads(row["inputs"])],
        price=row["price"],
        off_peak=bool(row["off_peak"]),
        state=JobState(row["state"]),
        task_id=row["task_id"],
        progress=row["progress"],
        eta=row["eta"],
        next_poll_at=_opt_from_db(row["next_poll_at"]),
        attempts=row["attempts"],
        card_message_id=row["card_message_id"],
        result_url=row["result_url"],
        result_expires_at=_opt_from_db(row["result_expires_at"]),
        failure_reason=row["failure_reason"],
        delivered_message_id=row["delivered_message_id"],
        reroll_of=row["reroll_of"],
        created_at=from_db(row["created_at"]),
        updated_at=from_db(row["updated_at"]),
        finished_at=_opt_from_db(row["finished_at"]),
    )
