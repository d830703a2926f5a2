"""Moving a SQLite deployment into PostgreSQL: every table, ids and all, in one transaction
on the target, checked before it commits.

The source is only read (open it with `SQLiteDatabase.open(path, read_only=True)`). The
target must be empty (freshly migrated): a copy never merges into data already there. The
ledger's triggers refuse UPDATE and DELETE only, so copying it (inserts) is allowed as is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from storage.database import Database, StorageError
from storage.sql import Queries, Row
from storage.store import Store

# Every table, parents before children (jobs before the ledger rows that name them; a
# re-roll names an earlier job, so jobs in id order satisfy their own foreign key). Each
# table's columns are read from the source's schema, so a column added by a migration is
# copied without being listed here; a test keeps this list (with DERIVED and RUNTIME) equal to the
# schema's tables.
TABLES: tuple[str, ...] = (
    "meta",
    "guild_settings",
    "member_quota",
    "role_allowances",
    "learned_durations",
    "jobs",
    "ledger",
)
# Kept by the database itself from the rows above (triggers on the ledger), so not copied:
# the copy's own inserts rebuild them on the target, and the check compares balances.
DERIVED: tuple[str, ...] = ("member_totals",)
# What running processes keep (who is alive, the API budgets' last minute): nothing to move.
RUNTIME: tuple[str, ...] = ("processes", "api_requests", "api_budgets")
_BATCH_ROWS = 500  # rows per INSERT (PostgreSQL takes at most 32,767 parameters)

# What the check compares for each member on both sides; by default the ledger sums the core
# turns into a balance (over all time), the caller may pass the balance itself.
Measure = Callable[[Store, int, int], Awaitable[object]]


class TargetNotEmptyError(StorageError):
    """The target database already holds rows: a copy only fills an empty one."""


class CopyMismatchError(StorageError):
    """The copy does not match its source; it was rolled back."""


@dataclass(frozen=True, slots=True)
class TableCount:
    table: str
    source: int
    target: int


@dataclass(frozen=True, slots=True)
class MemberCheck:
    guild_id: int
    user_id: int
    source: object
    target: object


@dataclass(frozen=True, slots=True)
class CopyReport:
    tables: list[TableCount]
    members: list[MemberCheck]

    @property
    def ok(self) -> bool:
        return all(t.source == t.target for t in self.tables) and all(
            m.source == m.target for m in self.members
        )


async def all_time_usage(store: Store, guild_id: int, user_id: int) -> object:
    return await store.member_usage(guild_id, user_id, None)


async def copy_database(
    source: Database, target: Database, *, measure: Measure = all_time_usage
) -> CopyReport:
    """Copy every row of `source` into the empty PostgreSQL `target`, keeping ids, in one
    transaction that commits only when every table's row count and every member's
    `measure` agree on both sides. Returns what was compared."""
    if target.dialect != "postgres":
        raise StorageError("the copy goes into PostgreSQL (DATABASE_URL), not into SQLite")
    async with source.read() as src, target.transaction() as dst:
        reader, writer = _Tables.of(src), _Tables.of(dst)
        held = {table: n for table, n in (await writer.counts()).items() if n}
        if held:
            listed = ", ".join(f"{n} in {table}" for table, n in held.items())
            raise TargetNotEmptyError(
                f"the target database already holds data ({listed}); copy-database only "
                "fills an empty one"
            )
        for table in TABLES:
            columns = await reader.columns(table)
            async for batch in reader.batches(table, columns):
                await writer.insert(table, columns, batch)
        for table in ("jobs", "ledger"):
            await writer.advance_identity(table)
        report = await compare(src, dst, measure)
        if not report.ok:
            raise CopyMismatchError(f"the copy does not match its source, rolled back: {report}")
    return report


async def compare(source: Store, target: Store, measure: Measure = all_time_usage) -> CopyReport:
    """Row counts of every table, and `measure` for every member named in the source's
    ledger, on both sides."""
    before, after = await _Tables.of(source).counts(), await _Tables.of(target).counts()
    tables = [TableCount(name, before[name], after[name]) for name in TABLES]
    members = [
        MemberCheck(
            guild_id,
            user_id,
            await measure(source, guild_id, user_id),
            await measure(target, guild_id, user_id),
        )
        for guild_id, user_id in await _Tables.of(source).ledger_members()
    ]
    return CopyReport(tables, members)


class _Tables(Queries):
    """Whole-table reads and writes, for the copy only."""

    @classmethod
    def of(cls, store: Store) -> _Tables:
        return cls(store._conn, writable=store.writable)

    async def counts(self) -> dict[str, int]:
        counts = {}
        for table in TABLES:
            row = await self._one(f"SELECT count(*) AS n FROM {table}")
            counts[table] = 0 if row is None else int(row["n"])
        return counts

    async def columns(self, table: str) -> list[str]:
        """The table's columns, from the (SQLite) source's schema."""
        rows = await self._all("SELECT name FROM pragma_table_info(?) ORDER BY cid", (table,))
        return [str(row["name"]) for row in rows]

    async def batches(self, table: str, columns: Sequence[str]) -> AsyncIterator[list[Row]]:
        """The rows in batches: jobs and the ledger by id (never all in memory at once),
        the small settings tables whole."""
        select = f"SELECT {', '.join(columns)} FROM {table}"
        if "id" not in columns:
            yield await self._all(select)
            return
        after = 0
        while rows := await self._all(
            f"{select} WHERE id > ? ORDER BY id LIMIT ?", (after, _BATCH_ROWS)
        ):
            yield rows
            after = int(rows[-1]["id"])

    async def insert(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        if not rows:
            return
        marks = "(" + ", ".join("?" for _ in columns) + ")"
        values = [row[column] for row in rows for column in columns]
        await self._write(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join(marks for _ in rows),
            values,
        )

    async def advance_identity(self, table: str) -> None:
        """Let the next id PostgreSQL hands out follow the largest one copied."""
        self._check_writable()
        await self._conn.fetch(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"COALESCE(MAX(id), 0) + 1, false) FROM {table}",
            [],
        )

    async def ledger_members(self) -> list[tuple[int, int]]:
        rows = await self._all(
            "SELECT DISTINCT guild_id, user_id FROM ledger WHERE user_id IS NOT NULL "
            "ORDER BY guild_id, user_id"
        )
        return [(int(row["guild_id"]), int(row["user_id"])) for row in rows]
