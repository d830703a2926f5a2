"""The plumbing every query module shares: a connection that runs SQL, and the codecs of
the values the schema stores as text (times, JSON).

Every statement is written once, with `?` placeholders; a connection of another dialect
translates them. Times are stored as fixed-width UTC text, so comparing the text compares
the times, in every dialect alike.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

Row = Mapping[str, Any]


class Connection(Protocol):
    """One open connection inside a transaction, as the query modules use it."""

    # What a dialect appends to a SELECT to lock the rows it reads until the transaction
    # ends ("" where transactions are serial anyway, as in SQLite).
    row_lock: str
    # What a dialect appends to the SELECT of a claim: rows another transaction has locked
    # are skipped, not waited for ("" where transactions are serial).
    claim_lock: str
    # The database's clock as seconds since the epoch, as an SQL expression.
    epoch_sql: str

    async def lock(self, keys: Sequence[str], shared: Collection[str] = ()) -> None:
        """Hold these named locks, in the order given, until the transaction ends; those
        also in `shared` only shared (no-op where transactions are serial)."""
        ...

    async def fetch(self, sql: str, params: Sequence[object]) -> list[Row]:
        """Run a statement and return its rows (an INSERT … RETURNING, too)."""
        ...

    async def execute(self, sql: str, params: Sequence[object]) -> int:
        """Run a statement; returns how many rows it changed."""
        ...


class ReadOnlyStoreError(RuntimeError):
    """A write was attempted through a store handed out by `Database.read()`."""


def to_db(moment: datetime) -> str:
    """A fixed-width UTC text form, so comparing the strings compares the times."""
    if moment.utcoffset() is None:
        raise ValueError("refusing to store a naive datetime; use timezone-aware UTC")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def from_db(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def opt_from_db(text: str | None) -> datetime | None:
    return None if text is None else from_db(text)


def db_value(value: object) -> object:
    if isinstance(value, datetime):
        return to_db(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return value


class Queries:
    """Base of the query modules: runs statements on the transaction's connection."""

    def __init__(self, connection: Connection, *, writable: bool) -> None:
        self._conn = connection
        self.writable = writable

    async def _all(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return await self._conn.fetch(sql, list(params))

    async def _one(self, sql: str, params: Sequence[object] = ()) -> Row | None:
        rows = await self._all(sql, params)
        return rows[0] if rows else None

    async def lock(self, *keys: str, shared: Iterable[str] = ()) -> None:
        """Serialise this transaction with every other one that locks any of `keys`, in
        any process, until it ends. A key in `shared` only waits for (and holds back) those
        that take it whole, not those that share it too. Keys are taken in sorted order, so
        two transactions never wait for each other in a circle."""
        only_shared = set(shared) - set(keys)
        await self._conn.lock(sorted(set(keys) | only_shared), only_shared)

    def _check_writable(self) -> None:
        if not self.writable:
            raise ReadOnlyStoreError("this store is read-only; use Database.transaction()")

    async def _write(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run a write; returns the number of rows changed."""
        self._check_writable()
        return await self._conn.execute(sql, list(params))

    async def _insert_row(self, sql: str, params: Sequence[object] = ()) -> Row:
        """Run an `INSERT … RETURNING …`; returns the row it wrote."""
        self._check_writable()
        rows = await self._conn.fetch(sql, list(params))
        if not rows:
            raise RuntimeError("INSERT returned no row")
        return rows[0]

    async def _insert(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run an `INSERT … RETURNING id`; returns the new row's id."""
        self._check_writable()
        rows = await self._conn.fetch(sql, list(params))
        if not rows:
            raise RuntimeError("INSERT returned no row id")
        return int(rows[0]["id"])
