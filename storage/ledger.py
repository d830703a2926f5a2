"""The append-only ledger: every credit a member is given, holds, is charged or gets back.

Balances are derived from these rows (`bot.core.quota` turns the sums into a balance); the
database refuses to change or delete a row.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Literal

from storage.models import LedgerEntry, LedgerKind, LedgerPage, LedgerPool, MemberUsage
from storage.sql import Queries, Row, from_db, to_db

_LEDGER_COLUMNS = "id, guild_id, user_id, job_id, kind, pool, amount, actor, reason, created_at"


class LedgerQueries(Queries):
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
            "INSERT INTO ledger (guild_id, user_id, job_id, kind, pool, amount, actor, reason, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
        """Sums for one member, in one statement whose cost does not grow with history.

        Period holds count when placed at or after `since` (None: all time), whenever they
        are settled; bonus sums are over all time. All-time sums come from member_totals,
        kept by the database in the same statement as each ledger row; a period's sums read
        only the rows of that period.
        """
        totals = (
            "SELECT t.unsettled, t.bonus_granted, t.bonus_unsettled, t.bonus_committed, "
            "t.period_unsettled, t.period_committed, t.period_excused "
            "FROM (SELECT 1 AS one) AS one LEFT JOIN member_totals AS t "
            "ON t.guild_id = ? AND t.user_id = ?"
        )
        if since is None:
            row = await self._one(totals, (guild_id, user_id))
            window: Row = {
                "period_held": _n(row, "period_unsettled"),
                "period_committed": _n(row, "period_committed"),
                "period_excused": _n(row, "period_excused"),
            }
        else:
            start = to_db(since)
            # One pass over the period's holds, each beside its settlement (at most one:
            # the unique index ledger_one_settlement), instead of one pass per sum.
            row = await self._one(
                "SELECT w.period_held, w.period_committed, w.period_excused, "
                "t.unsettled, t.bonus_granted, t.bonus_unsettled, t.bonus_committed "
                "FROM (SELECT "
                "  COALESCE(SUM(CASE WHEN s.id IS NULL THEN h.amount END), 0) AS period_held, "
                "  COALESCE(SUM(CASE WHEN s.kind = 'commit' THEN h.amount END), 0) "
                "    AS period_committed, "
                # A reset excuses what was committed before it, by holds placed in this
                # window before it. Derived from the rows themselves (ordered by id: the
                # ledger is append-only), not from the reset row's amount, so it stays right
                # when the window changes and never excuses what was committed after it.
                "  COALESCE(SUM(CASE WHEN s.kind = 'commit' AND s.id < ("
                "    SELECT COALESCE(MAX(r.id), 0) FROM ledger AS r WHERE r.kind = 'reset' "
                "    AND r.guild_id = ? AND r.user_id = ? AND r.created_at >= ?"
                "  ) THEN h.amount END), 0) AS period_excused "
                "  FROM ledger AS h LEFT JOIN ledger AS s ON s.job_id = h.job_id "
                "  AND s.pool = h.pool AND s.kind IN ('commit', 'release') "
                "  WHERE h.kind = 'hold' AND h.pool = 'period' "
                "  AND h.guild_id = ? AND h.user_id = ? AND h.created_at >= ?"
                ") AS w LEFT JOIN member_totals AS t ON t.guild_id = ? AND t.user_id = ?",
                (guild_id, user_id, start, guild_id, user_id, start, guild_id, user_id),
            )
            window = row or {}
        return MemberUsage(
            held_anytime=_n(row, "unsettled"),
            period_held=_n(window, "period_held"),
            period_committed=_n(window, "period_committed"),
            period_reset=_n(window, "period_excused"),
            bonus_granted=_n(row, "bonus_granted"),
            bonus_held=_n(row, "bonus_unsettled"),
            bonus_committed=_n(row, "bonus_committed"),
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


def _n(row: Row | None, column: str) -> int:
    """A sum from a row (None where the member has no totals yet)."""
    value = None if row is None else row[column]
    return 0 if value is None else int(value)


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


def _ledger_entry(row: Row) -> LedgerEntry:
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
