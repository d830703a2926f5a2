"""PostgreSQL, the shared store of many processes: a pool, migrations, transactions.

One asyncpg pool per process; each transaction borrows one connection of it. Processes
agree through the database itself: row locks (`SELECT … FOR UPDATE`) around a job's
transitions and transaction-scoped advisory locks on named keys (`Connection.lock`) around
balances, so two submissions racing for the last credits are serialised whichever process
each arrives at. Statements are the same text as for SQLite (`?` placeholders, times as
fixed-width text); `PostgresConnection` translates the placeholders.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

from storage.database import (
    DatabaseBase,
    Dialect,
    Migration,
    MigrationError,
    SchemaTooNewError,
    StorageError,
    bundled_migrations,
    checked_migrations,
    describe_url,
    url_password,
)
from storage.sql import Row, to_db
from storage.store import Store

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10.0
CLOSE_TIMEOUT_SECONDS = 10.0
# What keeps the version: one row per migration applied (created by the first one).
_VERSIONS_TABLE = "schema_migrations"

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy
    from asyncpg.transaction import Transaction

# asyncpg's classes are generic only in their stubs, so the alias stays a string.
PgConnection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"


def lock_id(key: str) -> int:
    """A stable signed 64-bit number for a lock name (the same in every process and
    release: Python's `hash` of a string is salted per process)."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@functools.lru_cache(maxsize=2048)
def numbered_placeholders(sql: str) -> str:
    """`?` → `$1 … $n`, outside quoted literals and names; each SQL text is translated once."""
    out: list[str] = []
    quote: str | None = None
    number = 0
    for char in sql:
        if quote is not None:
            if char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
        elif char == "?":
            number += 1
            out.append(f"${number}")
            continue
        out.append(char)
    return "".join(out)


def _row_count(status: str) -> int:
    """The rows a command changed, from its status ("UPDATE 3", "INSERT 0 1", "DELETE 0")."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PostgresConnection:
    """`storage.sql.Connection` over one pooled asyncpg connection in a transaction."""

    row_lock = " FOR UPDATE"
    claim_lock = " FOR UPDATE SKIP LOCKED"
    epoch_sql = "EXTRACT(EPOCH FROM clock_timestamp())::double precision"

    def __init__(self, connection: PgConnection) -> None:
        self._conn = connection

    async def lock(self, keys: Sequence[str], shared: Collection[str] = ()) -> None:
        # One at a time, in the (sorted) order given: two transactions taking overlapping
        # sets then never wait for each other in a circle.
        for key in keys:
            take = "pg_advisory_xact_lock_shared" if key in shared else "pg_advisory_xact_lock"
            await self._conn.execute(f"SELECT {take}($1)", lock_id(key))

    async def fetch(self, sql: str, params: Sequence[object]) -> list[Row]:
        records = await self._conn.fetch(numbered_placeholders(sql), *params)
        return [dict(record) for record in records]

    async def execute(self, sql: str, params: Sequence[object]) -> int:
        status = await self._conn.execute(numbered_placeholders(sql), *params)
        return _row_count(status)


class PostgresDatabase(DatabaseBase):
    """An open, migrated PostgreSQL database. Use `await PostgresDatabase.open(url)` (or
    `storage.open_database`); close with `close()`."""

    dialect: Dialect = "postgres"

    def __init__(self, pool: asyncpg.Pool[Any], target: str, version: int) -> None:
        self._pool = pool
        self.target = target  # host:port/dbname, never the password
        self.schema_version = version
        self._holders: set[asyncio.Task[Any]] = set()
        self._closed = False

    # --- opening ----------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        migrations: Sequence[Migration] | None = None,
        server_settings: Mapping[str, str] | None = None,
        min_connections: int = 1,
        max_connections: int = 10,
    ) -> PostgresDatabase:
        """Connect a pool, check the schema version and apply pending migrations.

        Raises `StorageError` when the server cannot be reached, `SchemaTooNewError` when
        the database was written by a newer bot, `MigrationError` when a migration fails
        (then none of the pending ones is applied).
        """
        target = describe_url(url)
        plan = (
            checked_migrations(migrations)
            if migrations is not None
            else bundled_migrations("postgres")
        )
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=min(min_connections, max_connections),
                max_size=max_connections,
                timeout=CONNECT_TIMEOUT_SECONDS,
                # Every statement planned for its own values: the bot's statements are
                # small, and a plan made once for unknown values reads whole tables
                # where the values at hand would take an index.
                server_settings={"plan_cache_mode": "force_custom_plan", **(server_settings or {})},
            )
        except (OSError, TimeoutError, ValueError, asyncpg.PostgresError) as error:
            raise StorageError(
                f"cannot connect to the PostgreSQL database {target}: "
                f"{_without(url_password(url), str(error) or type(error).__name__)}"
            ) from None
        except asyncpg.InterfaceError as error:
            raise StorageError(
                f"cannot connect to the PostgreSQL database {target}: {error}"
            ) from None
        try:
            async with pool.acquire() as conn:
                version = await _migrate(conn, target, plan)
        except BaseException:
            pool.terminate()
            raise
        log.info("database %s open at schema version %d", target, version)
        return cls(pool, target, version)

    # --- use --------------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.wait_for(self._pool.close(), CLOSE_TIMEOUT_SECONDS)
        except TimeoutError:
            log.warning("database %s: connections still busy at close; cut off", self.target)
            self._pool.terminate()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Store]:
        """A write transaction (READ COMMITTED, with the core's row and named locks),
        committed when the block ends normally and rolled back on any exception,
        cancellation included."""
        async with self._borrow(readonly=False) as conn:
            yield Store(PostgresConnection(conn), writable=True)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Store]:
        """A read-only snapshot (REPEATABLE READ, so several queries agree)."""
        async with self._borrow(readonly=True) as conn:
            yield Store(PostgresConnection(conn), writable=False)

    @contextlib.asynccontextmanager
    async def _borrow(self, *, readonly: bool) -> AsyncIterator[PgConnection]:
        if self._closed:
            raise StorageError("the database is closed")
        task = asyncio.current_task()
        if task is not None and task in self._holders:
            # A second connection from the same pool would wait for locks the first holds.
            raise RuntimeError("nested database transaction in the same task")
        if task is not None:
            self._holders.add(task)
        try:
            async with self._pool.acquire() as conn:
                tx = (
                    conn.transaction(isolation="repeatable_read", readonly=True)
                    if readonly
                    else conn.transaction()
                )
                await tx.start()
                try:
                    yield conn
                except BaseException:
                    await _abandon(conn, tx)
                    raise
                try:
                    await (tx.rollback() if readonly else tx.commit())
                except BaseException:
                    await _abandon(conn, tx)
                    raise
        finally:
            if task is not None:
                self._holders.discard(task)


async def _abandon(conn: PgConnection, tx: Transaction) -> None:
    """Roll back; if even that fails (a second cancellation, a broken link), close the
    connection: the server rolls back whatever a closed connection left open."""
    try:
        await tx.rollback()
    except asyncio.CancelledError:
        conn.terminate()
        raise
    except Exception:
        log.debug("rollback failed; closing the connection instead", exc_info=True)
        conn.terminate()


async def _migrate(conn: PgConnection, target: str, plan: list[Migration]) -> int:
    """Apply the pending migrations in one transaction; returns the schema version.

    Processes starting together take turns on an advisory lock (per schema), so each
    migration runs once; the version is read again under the lock.
    """
    latest = plan[-1].version if plan else 0
    async with conn.transaction():
        schema = await conn.fetchval("SELECT current_schema()")
        if schema is None:
            raise StorageError(
                f"the PostgreSQL database {target} has no schema to create tables in "
                "(none of the search_path exists)"
            )
        await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_id(f"migrations:{schema}"))
        has_versions = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_tables "
            "WHERE schemaname = current_schema() AND tablename = $1)",
            _VERSIONS_TABLE,
        )
        current = 0
        if has_versions:
            current = int(
                await conn.fetchval(f"SELECT COALESCE(MAX(version), 0) FROM {_VERSIONS_TABLE}")
            )
        if current > latest:
            raise SchemaTooNewError(
                f"the PostgreSQL database {target} (schema {schema}) has schema version "
                f"{current}, but this bot knows versions up to {latest}: it was written by a "
                "newer version of the bot. Run that version (or newer), or restore a backup "
                "made for this one."
            )
        pending = [m for m in plan if m.version > current]
        if not pending:
            return current
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {_VERSIONS_TABLE} (version INTEGER PRIMARY KEY, "
            "name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        applied_at = to_db(datetime.now(UTC))
        for migration in pending:
            log.info("database %s: applying migration %s", target, migration.name)
            try:
                await conn.execute(migration.sql)  # several statements: the simple protocol
            except asyncpg.PostgresError as error:
                raise MigrationError(
                    f"migration {migration.name} failed ({error}); the database {target} was "
                    f"left at schema version {current}"
                ) from error
            await conn.execute(
                f"INSERT INTO {_VERSIONS_TABLE} (version, name, applied_at) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                applied_at,
            )
        return latest


def _without(secret: str | None, text: str) -> str:
    return text.replace(secret, "***") if secret else text
