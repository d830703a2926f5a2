"""Jobs: their rows, the changes a transition may make, and the queries the poller and the
commands ask."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime

from storage.models import ACTIVE_STATES, InputRef, Job, JobState, NewJob
from storage.sql import Queries, Row, db_value, from_db, opt_from_db, to_db

# Written out, not bound: a partial index on active jobs serves a query only when its WHERE
# says the same words as the index's (the migrations spell the states in this order).
ACTIVE_SQL = "state IN ({})".format(
    ", ".join(f"'{state.value}'" for state in JobState if state in ACTIVE_STATES)
)
_JOB_COLUMNS = (
    "id, guild_id, channel_id, user_id, model, params, inputs, price, off_peak, state, task_id, "
    "progress, eta, next_poll_at, attempts, card_message_id, result_url, result_expires_at, "
    "failure_reason, delivered_message_id, reroll_of, created_at, updated_at, finished_at, "
    "card_state, card_stale, delivery_uncertain_at, read_state, read_priority, expected_at, "
    "give_up_at, bucket, webhook_token, webhook_at"
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
        "read_priority",
        "expected_at",
        "give_up_at",
        "webhook_at",
        "lease_owner",
        "lease_until",
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
            "off_peak, state, failure_reason, reroll_of, card_state, bucket, give_up_at, "
            "webhook_token, lease_owner, lease_until, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            f"RETURNING {_JOB_COLUMNS}",
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
                new.bucket,
                None if new.give_up_at is None else to_db(new.give_up_at),
                new.webhook_token,
                new.lease_owner,
                None if new.lease_until is None else to_db(new.lease_until),
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
            f"SELECT count(*) AS n FROM jobs WHERE guild_id = ? AND user_id = ? AND {ACTIVE_SQL}",
            (guild_id, user_id),
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

    async def jobs_to_give_up(self, now: datetime, limit: int, owner: str) -> list[Job]:
        """Active jobs whose give-up time has come, by index (not a scan of every job);
        not a submission another process still holds (its call may still be running
        there, waiting behind the budget or its retries)."""
        rows = await self._all(
            # Only running jobs have a give-up time (cleared when a job ends).
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE give_up_at IS NOT NULL AND give_up_at <= ? "
            "AND NOT (task_id IS NULL AND lease_until IS NOT NULL AND lease_until > ? "
            "AND COALESCE(lease_owner, '') <> ?) "
            "ORDER BY give_up_at, id LIMIT ?",
            (to_db(now), to_db(now), owner, limit),
        )
        return [_job(row) for row in rows]

    async def active_without_give_up(self, after_id: int, limit: int) -> list[Job]:
        """Active jobs written before give-up times existed, by id from `after_id` (once)."""
        rows = await self._all(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE {ACTIVE_SQL} AND give_up_at IS NULL "
            "AND id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [_job(row) for row in rows]

    async def active_reads(self, after_id: int, limit: int) -> list[tuple[int, datetime | None]]:
        """(id, next read) of active jobs with a task id, by id from `after_id`."""
        rows = await self._all(
            f"SELECT id, next_poll_at FROM jobs WHERE {ACTIVE_SQL} AND task_id IS NOT NULL "
            "AND id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [(int(row["id"]), opt_from_db(row["next_poll_at"])) for row in rows]

    async def deliveries_waiting(self, after_id: int, limit: int) -> list[int]:
        """Ids of finished videos not yet posted, by id from `after_id`."""
        rows = await self._all(
            "SELECT id FROM jobs WHERE state = 'SUCCEEDED' AND id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [int(row["id"]) for row in rows]

    async def set_next_reads(self, reads: Sequence[tuple[int, datetime]], at: datetime) -> None:
        """Move many jobs' next read at once (spreading a backlog): one statement."""
        if not reads:
            return
        cases = " ".join("WHEN ? THEN ?" for _ in reads)
        marks = ", ".join("?" for _ in reads)
        params: list[object] = [v for job_id, when in reads for v in (job_id, to_db(when))]
        await self._write(
            f"UPDATE jobs SET next_poll_at = CASE id {cases} END, updated_at = ? "
            f"WHERE id IN ({marks})",
            [*params, to_db(at), *(job_id for job_id, _ in reads)],
        )

    async def job_by_webhook(self, token: str) -> Job | None:
        row = await self._one(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE webhook_token = ?", (token,))
        return None if row is None else _job(row)

    async def webhooks_seen(self, ended_before: datetime, limit: int) -> list[bool]:
        """For the newest `limit` jobs the service made a video for, that asked for a
        webhook and ended before `ended_before`: whether a webhook for each came, newest
        first. Stops at the newest few, whatever the history."""
        rows = await self._all(
            "SELECT webhook_at FROM jobs WHERE webhook_token IS NOT NULL "
            "AND result_url IS NOT NULL AND finished_at < ? ORDER BY id DESC LIMIT ?",
            (to_db(ended_before), limit),
        )
        return [row["webhook_at"] is not None for row in rows]

    async def learned_samples(self, bucket_from: str, bucket_to: str) -> dict[str, list[float]]:
        """The learned durations of every kind of job from `bucket_from` up to (not
        including) `bucket_to`: a handful of rows, whatever the history."""
        rows = await self._all(
            "SELECT bucket, samples FROM learned_durations WHERE bucket >= ? AND bucket < ?",
            (bucket_from, bucket_to),
        )
        return {str(row["bucket"]): [float(x) for x in json.loads(row["samples"])] for row in rows}

    async def learn_duration(self, bucket: str, seconds: float, keep: int, at: datetime) -> None:
        """Add one duration to its kind's samples, keeping the newest `keep`."""
        lock = self._conn.row_lock
        row = await self._one(
            f"SELECT samples FROM learned_durations WHERE bucket = ?{lock}", (bucket,)
        )
        samples = [] if row is None else [float(x) for x in json.loads(row["samples"])]
        samples = [*samples, round(seconds, 3)][-keep:]
        await self._write(
            "INSERT INTO learned_durations (bucket, samples, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (bucket) DO UPDATE SET samples = excluded.samples, "
            "updated_at = excluded.updated_at",
            (bucket, json.dumps(samples), to_db(at)),
        )

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
        read_priority=row["read_priority"],
        expected_at=opt_from_db(row["expected_at"]),
        give_up_at=opt_from_db(row["give_up_at"]),
        bucket=row["bucket"],
        webhook_token=row["webhook_token"],
        webhook_at=opt_from_db(row["webhook_at"]),
        delivery_uncertain_at=opt_from_db(row["delivery_uncertain_at"]),
        read_state=json.loads(row["read_state"] or "{}"),
    )
