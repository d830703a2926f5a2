"""SQLite, the default store: opening, migrating and serialising transactions.

One aiosqlite connection serves the whole bot. Because every coroutine shares it, a
transaction opened by one coroutine would otherwise swallow statements issued by another
that happens to run while the first awaits; an `asyncio.Lock` around every transaction (and
every read) makes each one a critical section, so coroutine interleaving can never mix two
logical transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Collection, Sequence
from pathlib import Path
from urllib.parse import quote

import aiosqlite

from storage.database import (
    CorruptDatabaseError,
    DatabaseBase,
    Dialect,
    Migration,
    MigrationError,
    SchemaTooNewError,
    StorageError,
    bundled_migrations,
    checked_migrations,
)
from storage.sql import ReadOnlyStoreError, Row
from storage.store import Store

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000  # another process (a CLI tool, a backup) may hold the file briefly


def split_statements(script: str) -> list[str]:
    """Split a migration into statements (triggers with inner `;` stay whole).

    `executescript` would be simpler, but it commits any open transaction first, which
    would break "all pending migrations in one transaction".
    """
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if _has_sql(buffer):
                statements.append(_without_leading_comments(buffer))
            buffer = ""
    if _has_sql(buffer):
        raise StorageError(f"a migration ends with an incomplete statement: {buffer.strip()!r}")
    return statements


def _without_leading_comments(text: str) -> str:
    lines = text.strip().splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)
    return "\n".join(lines).strip()


def _has_sql(text: str) -> bool:
    return any(
        line.strip() and not line.strip().startswith("--") and line.strip() != ";"
        for line in text.splitlines()
    )


def _is_busy(error: sqlite3.Error) -> bool:
    text = str(error).lower()
    return "locked" in text or "busy" in text


# Rows ANALYZE samples per index: statistics good enough to choose indexes, in milliseconds.
ANALYSIS_LIMIT = 1000


class SQLiteConnection:
    """`storage.sql.Connection` over the one aiosqlite connection.

    Transactions on it are serial (one process, one connection, `BEGIN IMMEDIATE` under a
    lock), so row locks and named locks are not needed.
    """

    row_lock = ""
    claim_lock = ""
    epoch_sql = "(julianday('now') - 2440587.5) * 86400.0"

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._conn = connection

    async def lock(self, keys: Sequence[str], shared: Collection[str] = ()) -> None:
        return None

    async def fetch(self, sql: str, params: Sequence[object]) -> list[Row]:
        return [dict(row) for row in await self._conn.execute_fetchall(sql, tuple(params))]

    async def execute(self, sql: str, params: Sequence[object]) -> int:
        cursor = await self._conn.execute(sql, tuple(params))
        try:
            return cursor.rowcount
        finally:
            await cursor.close()


class SQLiteDatabase(DatabaseBase):
    """An open, migrated SQLite file. Use `await SQLiteDatabase.open(path)` (or
    `storage.open_database`); close with `close()`."""

    dialect: Dialect = "sqlite"

    def __init__(
        self, connection: aiosqlite.Connection, path: Path, version: int, *, read_only: bool
    ) -> None:
        self._conn = connection
        self.path = path
        self.schema_version = version
        self.read_only = read_only
        self._lock = asyncio.Lock()
        self._holder: asyncio.Task[object] | None = None
        self._closed = False

    # --- opening ----------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        migrations: Sequence[Migration] | None = None,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        read_only: bool = False,
    ) -> SQLiteDatabase:
        """Open (creating if missing), check and migrate the database at `path`.

        Raises `CorruptDatabaseError` for a file that is not a readable SQLite database (it is
        never replaced), `SchemaTooNewError` when the file was written by a newer bot.

        `read_only` opens an existing file of the current schema version without writing to
        it at all (no migration, no journal change): only `read()` works then.
        """
        path = Path(path)
        plan = (
            checked_migrations(migrations)
            if migrations is not None
            else bundled_migrations("sqlite")
        )
        if path.is_dir():
            raise CorruptDatabaseError(
                f"database path {path} is a directory; point DATABASE_PATH at a file"
            )
        if read_only and not path.is_file():
            raise StorageError(f"there is no SQLite database at {path}")
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if read_only:
                uri = f"file:{quote(str(path.resolve()))}?mode=ro"
                conn = await aiosqlite.connect(uri, uri=True, isolation_level=None)
            else:
                conn = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as error:
            raise CorruptDatabaseError(f"cannot open the database file {path}: {error}") from error
        try:
            conn.row_factory = sqlite3.Row
            version = await cls._prepare(conn, path, plan, busy_timeout_ms, read_only)
        except BaseException:
            await conn.close()
            raise
        log.info("database %s open at schema version %d", path, version)
        return cls(conn, path, version, read_only=read_only)

    @staticmethod
    async def _prepare(
        conn: aiosqlite.Connection,
        path: Path,
        plan: list[Migration],
        busy_timeout_ms: int,
        read_only: bool,
    ) -> int:
        try:
            await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            # Reading the schema is the first thing that touches the file's contents, so a
            # file that is not a database fails here, before anything could write to it.
            await (await conn.execute("SELECT count(*) FROM sqlite_schema")).fetchall()
            rows = await (await conn.execute("PRAGMA quick_check")).fetchall()
            problems = [str(row[0]) for row in rows if str(row[0]) != "ok"]
            if problems:
                raise CorruptDatabaseError(
                    f"the database file {path} is damaged ({'; '.join(problems[:3])}); "
                    "restore it from a backup or move it away to start empty"
                )
            version = int((await (await conn.execute("PRAGMA user_version")).fetchone() or [0])[0])
            latest = plan[-1].version if plan else 0
            if version > latest:
                raise SchemaTooNewError(
                    f"the database file {path} has schema version {version}, but this bot "
                    f"knows versions up to {latest}: it was written by a newer version of the "
                    "bot. Run that version (or newer), or restore a backup made for this one."
                )
            if read_only:
                if version < latest:
                    raise StorageError(
                        f"the database file {path} has schema version {version}, not {latest}: "
                        "start this version of the bot on it once to bring it up to date"
                    )
                return version
            mode = await (await conn.execute("PRAGMA journal_mode = WAL")).fetchone()
            if mode is not None and str(mode[0]).lower() != "wal":
                log.warning("database %s: WAL mode not available (%s)", path, mode[0])
            await conn.execute("PRAGMA foreign_keys = ON")
            await conn.execute("PRAGMA synchronous = NORMAL")
            if version < latest:
                version = await SQLiteDatabase._migrate(conn, path, plan, version)
            # Statistics for the query planner, sampled so they cost milliseconds whatever
            # the size: without them SQLite may pick an index that reads every active job
            # where a partial one reads only what is due. Refreshed by `maintain()`.
            await conn.execute(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}")
            await conn.execute("ANALYZE")
            return version
        except StorageError:
            raise
        except sqlite3.Error as error:
            if _is_busy(error):
                raise StorageError(
                    f"the database file {path} is locked by another process: {error}"
                ) from error
            raise CorruptDatabaseError(
                f"cannot read the database file {path} ({error}); it is not a usable SQLite "
                "database. It was left untouched: restore it from a backup or move it away."
            ) from error

    @staticmethod
    async def _migrate(
        conn: aiosqlite.Connection, path: Path, plan: list[Migration], current: int
    ) -> int:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            row = await (await conn.execute("PRAGMA user_version")).fetchone()
            current = int(row[0]) if row else 0
            pending = [m for m in plan if m.version > current]
            for migration in pending:
                log.info("database %s: applying migration %s", path, migration.name)
                for statement in split_statements(migration.sql):
                    try:
                        await conn.execute(statement)
                    except sqlite3.Error as error:
                        if _is_busy(error):
                            raise
                        raise MigrationError(
                            f"migration {migration.name} failed ({error}); the database "
                            f"{path} was left at schema version {current}"
                        ) from error
            target = plan[-1].version if plan else current
            if pending:
                await conn.execute(f"PRAGMA user_version = {int(target)}")
            await conn.execute("COMMIT")
            return target
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                await conn.execute("ROLLBACK")
            raise

    # --- use --------------------------------------------------------------------------

    async def maintain(self) -> None:
        """Refresh the query planner's statistics (the tables grow as the bot runs)."""
        if self.read_only:
            return
        async with self._exclusive():
            await self._conn.execute("ANALYZE")

    async def close(self) -> None:
        if self._closed:
            return
        async with self._lock:
            self._closed = True
            await self._conn.close()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Store]:
        """A write transaction (BEGIN IMMEDIATE), committed when the block ends normally and
        rolled back on any exception, cancellation included."""
        if self.read_only:
            raise ReadOnlyStoreError(f"the database {self.path} was opened read-only")
        async with self._exclusive():
            await self._begin("BEGIN IMMEDIATE")
            try:
                yield Store(SQLiteConnection(self._conn), writable=True)
            except BaseException:
                await self._rollback()
                raise
            try:
                await self._conn.execute("COMMIT")
            except BaseException:
                await self._rollback()
                raise

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Store]:
        """A read-only snapshot (a deferred transaction, so several queries agree)."""
        async with self._exclusive():
            await self._begin("BEGIN")
            try:
                yield Store(SQLiteConnection(self._conn), writable=False)
            finally:
                await self._rollback()

    @contextlib.asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        if self._closed:
            raise StorageError("the database is closed")
        task = asyncio.current_task()
        if task is not None and self._holder is task:
            # asyncio.Lock is not re-entrant: nesting would wait for itself forever.
            raise RuntimeError("nested database transaction in the same task")
        async with self._lock:
            if self._closed:
                raise StorageError("the database is closed")
            self._holder = task
            try:
                yield
            finally:
                self._holder = None

    async def _begin(self, sql: str) -> None:
        # aiosqlite runs the statement on its own thread: a task cancelled while waiting for
        # BEGIN leaves it to run anyway. Roll back behind it, or the next transaction on this
        # shared connection would fail with "cannot start a transaction within a transaction".
        try:
            await asyncio.shield(self._execute(sql))
        except asyncio.CancelledError:
            await self._rollback()
            raise

    async def _execute(self, sql: str) -> None:
        await self._conn.execute(sql)

    async def _rollback(self) -> None:
        # Shielded: a second cancellation must not leave the shared connection mid-transaction.
        try:
            await asyncio.shield(self._execute("ROLLBACK"))
        except sqlite3.Error:
            # "no transaction is active": SQLite already rolled back (e.g. after SQLITE_FULL).
            log.debug("rollback after an error found no open transaction", exc_info=True)
