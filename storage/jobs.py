"""Jobs: their rows, the changes a transition may make, and the queries the poller and the
commands ask."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from storage.models import ACTIVE_STATES, InputRef, Job, JobState, NewJob
from storage.sql import Queries, Row, db_value, from_db, opt_from_db, to_db

_ACTIVE = tuple(state.value for state in ACTIVE_STATES)
_JOB_COLUMNS = (
    "id, guild_id, channel_id, user_id, model, params, inputs, price, off_peak, state, task_id, "
    "progress, eta, next_poll_at, attempts, card_message_id, result_url, result_expires_at, "
    "failure_reason, delivered_message_id, reroll_of, created_at, updated_at, finished_at, "
    "card_state, card_stale, delivery_uncertain_at, read_state"
)
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
        "card_state",
        "card_stale",
        "delivery_uncertain_at",
        "read_state",
    }
)
# Ids are signed 64-bit integers in every dialect: a larger number names no job.
MAX_ID = 2**63 - 1


class JobQueries(Queries):
    # --- jobs -------------------------------------------------------------------------

    async def insert_job(self, new: NewJob, *, state: JobState, at: datetime) -> Job:
        now = to_db(at)
        row = await self._insert_row(
            "INSERT INTO jobs (guild_id, channel_id, user_id, model, params, inputs, price, "
            "off_peak, state, failure_reason, reroll_of, card_state, created_at, updated_at) "
            f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {_JOB_COLUMNS}",
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
                new.card_state,
                now,
                now,
            ),
        )
        return _job(row)

    async def get_job(self, job_id: int, *, for_update: bool = False) -> Job | None:
        """The job; `for_update` locks its row until the transaction ends."""
        if not 0 < job_id <= MAX_ID:
            return None
        lock = self._conn.row_lock if for_update else ""
        row = await self._one(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?{lock}", (job_id,))
        return None if row is None else _job(row)

    async def update_job(self, job_id: int, at: datetime, **changes: object) -> Job:
        """Change the given columns (and `updated_at`); returns the job as now stored."""
        unknown = set(changes) - _MUTABLE_JOB_COLUMNS
        if unknown:
            raise ValueError(f"job columns that cannot be changed: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in changes)
        values = [db_value(value) for value in changes.values()]
        sets = f"{assignments}, updated_at = ?" if assignments else "updated_at = ?"
        self._check_writable()
        rows = await self._all(
            f"UPDATE jobs SET {sets} WHERE id = ? RETURNING {_JOB_COLUMNS}",
            [*values, to_db(at), job_id],
        )
        if len(rows) != 1:
            raise LookupError(f"no job {job_id}")
        return _job(rows[0])

    async def count_active_jobs(self, guild_id: int, user_id: int) -> int:
        row = await self._one(
            "SELECT count(*) AS n FROM jobs WHERE guild_id = ? AND user_id = ? "
            "AND state IN (?, ?, ?)",
            (guild_id, user_id, *_ACTIVE),
        )
        return 0 if row is None else int(row["n"])

    async def count_jobs_by_state(self) -> dict[JobState, int]:
        """How many jobs are in each state, every state listed (0 where none is)."""
        counts = dict.fromkeys(JobState, 0)
        for row in await self._all("SELECT state, count(*) AS n FROM jobs GROUP BY state"):
            counts[JobState(row["state"])] = int(row["n"])
        return counts

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
        """SUCCEEDED jobs due for a delivery attempt, once their card is settled (a video
        is posted as a reply to its card)."""
        rows = await self._all(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state = ? AND card_state <> 'pending' "
            "AND (next_poll_at IS NULL OR next_poll_at <= ?) "
            # Never-scheduled first, in both dialects (PostgreSQL sorts NULLs last by default).
            "ORDER BY next_poll_at NULLS FIRST, id LIMIT ?",
            (JobState.SUCCEEDED.value, to_db(now), limit),
        )
        return [_job(row) for row in rows]

    async def cards_pending(self, before: datetime, limit: int) -> list[Job]:
        """Jobs created before `before` whose card is still to be posted (or found again)."""
        rows = await self._all(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE card_state = 'pending' AND created_at < ? "
            "ORDER BY created_at LIMIT ?",
            (to_db(before), limit),
        )
        return [_job(row) for row in rows]

    async def cards_stale(self, before: datetime, limit: int) -> list[Job]:
        """Jobs last changed before `before` whose member has not been shown their state."""
        rows = await self._all(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE card_stale = 1 AND card_state <> 'pending' "
            "AND updated_at < ? ORDER BY updated_at LIMIT ?",
            (to_db(before), limit),
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


def _job(row: Row) -> Job:
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
        next_poll_at=opt_from_db(row["next_poll_at"]),
        attempts=row["attempts"],
        card_message_id=row["card_message_id"],
        result_url=row["result_url"],
        result_expires_at=opt_from_db(row["result_expires_at"]),
        failure_reason=row["failure_reason"],
        delivered_message_id=row["delivered_message_id"],
        reroll_of=row["reroll_of"],
        created_at=from_db(row["created_at"]),
        updated_at=from_db(row["updated_at"]),
        finished_at=opt_from_db(row["finished_at"]),
        card_state=row["card_state"],
        card_stale=bool(row["card_stale"]),
        delivery_uncertain_at=opt_from_db(row["delivery_uncertain_at"]),
        read_state=json.loads(row["read_state"] or "{}"),
    )
