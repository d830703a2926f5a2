"""Leases: which process works on which job, which processes are alive, and the video API
budgets every process of a deployment shares (`api_requests`, `api_budgets`; the rules are
`bot.api.budget`'s, the clock is the database's).

A claim takes due jobs that nobody else holds (no lease, an expired one, or this process's
own) and leases them to the claimer until a given time, in one statement: on PostgreSQL
the rows are picked `FOR UPDATE SKIP LOCKED`, so two processes claiming at once take
different jobs and never wait for each other; SQLite is one process, serial anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from storage.jobs import _JOB_COLUMNS, ACTIVE_SQL, _job
from storage.models import Job
from storage.sql import Queries, from_db, to_db

_FREE = "(lease_until IS NULL OR lease_until <= ? OR lease_owner = ?)"


def _lives_of(name: str) -> tuple[str, str]:
    """Bounds that hold exactly the owners `name/<anything>` between them, by byte order
    (`/` is followed by `0`): found by the index, unlike a prefix function."""
    return f"{name}/", f"{name}0"


class LeaseQueries(Queries):
    # --- claims ----------------------------------------------------------------------------

    async def _claim(
        self,
        where: str,
        params: Sequence[object],
        order: str,
        key: Callable[[Job], Any],
        *,
        owner: str,
        now: datetime,
        until: datetime,
        limit: int,
    ) -> list[Job]:
        """Lease to `owner` until `until` at most `limit` jobs matching `where` that are
        free at `now`, the first by `order`; returns them in that order (`key`)."""
        self._check_writable()
        rows = await self._conn.fetch(
            f"UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE id IN ("
            f"SELECT id FROM jobs WHERE {where} AND {_FREE} "
            f"ORDER BY {order} LIMIT ?{self._conn.claim_lock}) RETURNING {_JOB_COLUMNS}",
            [owner, to_db(until), *params, to_db(now), owner, limit],
        )
        return sorted((_job(row) for row in rows), key=key)

    async def claim_reads(
        self, owner: str, now: datetime, until: datetime, limit: int
    ) -> list[Job]:
        """Active jobs with a task id whose next read has come: the reads most likely to
        find the job done first, then the most overdue."""
        return await self._claim(
            # The states written out, not bound: PostgreSQL's reusable plan then knows them.
            f"{ACTIVE_SQL} AND task_id IS NOT NULL AND next_poll_at IS NOT NULL "
            "AND next_poll_at <= ?",
            (to_db(now),),
            "read_priority, next_poll_at, id",
            lambda job: (job.read_priority, job.next_poll_at, job.id),
            owner=owner,
            now=now,
            until=until,
            limit=limit,
        )

    async def claim_deliveries(
        self, owner: str, now: datetime, until: datetime, limit: int
    ) -> list[Job]:
        """SUCCEEDED jobs due for a delivery attempt, once their card is settled (a video
        is posted as a reply to its card); never-scheduled first."""
        return await self._claim(
            "state = 'SUCCEEDED' AND card_state <> 'pending' "
            "AND (next_poll_at IS NULL OR next_poll_at <= ?)",
            (to_db(now),),
            # NULLS FIRST in both dialects (PostgreSQL sorts NULLs last by default).
            "next_poll_at NULLS FIRST, id",
            lambda job: (job.next_poll_at is not None, job.next_poll_at or now, job.id),
            owner=owner,
            now=now,
            until=until,
            limit=limit,
        )

    async def claim_pending_cards(
        self, owner: str, before: datetime, now: datetime, until: datetime, limit: int
    ) -> list[Job]:
        """Jobs created before `before` whose card is still to be posted (or found again)."""
        return await self._claim(
            "card_state = 'pending' AND created_at < ?",
            (to_db(before),),
            "created_at, id",
            lambda job: (job.created_at, job.id),
            owner=owner,
            now=now,
            until=until,
            limit=limit,
        )

    async def claim_stale_cards(
        self, owner: str, before: datetime, now: datetime, until: datetime, limit: int
    ) -> list[Job]:
        """Jobs last changed before `before` whose member has not been shown their state."""
        return await self._claim(
            "card_stale = 1 AND card_state <> 'pending' AND updated_at < ?",
            (to_db(before),),
            "updated_at, id",
            lambda job: (job.updated_at, job.id),
            owner=owner,
            now=now,
            until=until,
            limit=limit,
        )

    async def next_read_at(self, after: datetime, owner: str) -> datetime | None:
        """The earliest read planned after `after` of a running job `owner` may make: one
        nobody else holds (another process's reads are its own business)."""
        row = await self._one(
            f"SELECT MIN(next_poll_at) AS at FROM jobs WHERE {ACTIVE_SQL} "
            f"AND task_id IS NOT NULL AND next_poll_at > ? AND {_FREE}",
            (to_db(after), to_db(after), owner),
        )
        return None if row is None or row["at"] is None else from_db(row["at"])

    async def renew_leases(self, owner: str, job_ids: Iterable[int], until: datetime) -> int:
        """Extend `owner`'s leases of these jobs (work still running); returns how many it
        still held."""
        ids = list(job_ids)
        if not ids:
            return 0
        marks = ", ".join("?" for _ in ids)
        return await self._write(
            f"UPDATE jobs SET lease_until = ? WHERE lease_owner = ? AND id IN ({marks})",
            (to_db(until), owner, *ids),
        )

    async def count_leases(self, owner: str, now: datetime) -> int:
        """How many unexpired leases `owner` holds."""
        row = await self._one(
            "SELECT COUNT(*) AS n FROM jobs WHERE lease_owner = ? AND lease_until > ?",
            (owner, to_db(now)),
        )
        return 0 if row is None else int(row["n"])

    async def release_leases(self, owner: str) -> int:
        """Give up every lease `owner` holds (a clean stop: the others need not wait)."""
        return await self._write(
            "UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?",
            (owner,),
        )

    async def release_earlier_leases(self, name: str, owner: str) -> int:
        """Give up the leases of this process's earlier lives: owners `name/…` other than
        `owner` (itself now)."""
        return await self._write(
            "UPDATE jobs SET lease_owner = NULL, lease_until = NULL "
            "WHERE lease_owner > ? AND lease_owner < ? AND lease_owner <> ?",
            (*_lives_of(name), owner),
        )

    async def leased_submissions(self, now: datetime, *, other_than: str) -> set[int]:
        """Jobs in SUBMITTING whose lease another process than `other_than` still holds:
        their API call may be running there."""
        rows = await self._all(
            "SELECT id FROM jobs WHERE state = 'SUBMITTING' AND lease_until > ? "
            "AND lease_owner <> ?",
            (to_db(now), other_than),
        )
        return {int(row["id"]) for row in rows}

    # --- processes ---------------------------------------------------------------------------

    async def process_seen(self, owner: str, now: datetime) -> None:
        """`owner` is alive now."""
        await self._write(
            "INSERT INTO processes (owner, seen_at) VALUES (?, ?) "
            "ON CONFLICT (owner) DO UPDATE SET seen_at = excluded.seen_at",
            (owner, to_db(now)),
        )

    async def process_gone(self, owner: str) -> None:
        await self._write("DELETE FROM processes WHERE owner = ?", (owner,))

    async def earlier_lives_gone(self, name: str, owner: str) -> None:
        """Forget the earlier lives of a process started again (owners `name/…` other than
        `owner`): they are not running."""
        await self._write(
            "DELETE FROM processes WHERE owner > ? AND owner < ? AND owner <> ?",
            (*_lives_of(name), owner),
        )

    async def processes_alive(self, since: datetime, *, forget_before: datetime) -> list[str]:
        """Owners seen since `since`; rows not seen since `forget_before` are deleted."""
        await self._write("DELETE FROM processes WHERE seen_at < ?", (to_db(forget_before),))
        rows = await self._all(
            "SELECT owner FROM processes WHERE seen_at >= ? ORDER BY owner", (to_db(since),)
        )
        return [str(row["owner"]) for row in rows]

    # --- shared API budgets ------------------------------------------------------------------

    async def clock(self) -> float:
        """The database's clock, in seconds since the epoch (the same for every process)."""
        row = await self._one(f"SELECT {self._conn.epoch_sql} AS now")
        assert row is not None
        return float(row["now"])

    async def budget_pace(self, budget: str) -> tuple[float, float | None, float]:
        """(paused until, slowed at, slowed to) of a budget; zeros when never slowed."""
        row = await self._one(
            "SELECT paused_until, slowed_at, slowed_to FROM api_budgets WHERE budget = ?",
            (budget,),
        )
        if row is None:
            return 0.0, None, 0.0
        slowed_at = row["slowed_at"]
        return (
            float(row["paused_until"]),
            None if slowed_at is None else float(slowed_at),
            float(row["slowed_to"] or 0.0),
        )

    async def set_budget_pace(
        self, budget: str, paused_until: float, slowed_at: float | None, slowed_to: float
    ) -> None:
        await self._write(
            "INSERT INTO api_budgets (budget, paused_until, slowed_at, slowed_to) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (budget) DO UPDATE SET "
            "paused_until = excluded.paused_until, slowed_at = excluded.slowed_at, "
            "slowed_to = excluded.slowed_to",
            (budget, paused_until, slowed_at, slowed_to),
        )

    async def budget_window(self, budget: str, since: float) -> list[float]:
        """The budget's requests since `since`, oldest first."""
        rows = await self._all(
            "SELECT at FROM api_requests WHERE budget = ? AND at >= ? ORDER BY at",
            (budget, since),
        )
        return [float(row["at"]) for row in rows]

    async def forget_budget_requests(self, budget: str, before: float) -> None:
        await self._write("DELETE FROM api_requests WHERE budget = ? AND at < ?", (budget, before))

    async def count_budget_request(self, budget: str, at: float) -> None:
        await self._write("INSERT INTO api_requests (budget, at) VALUES (?, ?)", (budget, at))
