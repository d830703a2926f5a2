"""One interface, two backends: what the core holds (`Database`), the errors that stop the
bot at start, and the numbered migrations of each dialect (`storage.opening` picks the
backend from `DATABASE_URL`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from importlib import resources
from typing import Literal, Protocol, Self
from urllib.parse import urlsplit

from storage.store import Store

Dialect = Literal["sqlite", "postgres"]
POSTGRES_SCHEMES = ("postgresql", "postgres")
_MIGRATION_NAME = re.compile(r"^(\d+)_[A-Za-z0-9_]+\.sql$")


class StorageError(Exception):
    """The database cannot be used; the message says why and what to do."""


class SchemaTooNewError(StorageError):
    """The database was written by a newer version of the bot."""


class CorruptDatabaseError(StorageError):
    """The file is not a readable SQLite database, or fails its integrity check."""


class MigrationError(StorageError):
    """A migration failed; every pending one was rolled back, the database is as it was."""


class Database(Protocol):
    """An open, migrated database, SQLite or PostgreSQL.

    `transaction()` hands out a writable `Store`, committed when the block ends normally and
    rolled back on any exception (cancellation included); `read()` a read-only one whose
    queries see one snapshot. A transaction may not be opened inside another in one task.
    """

    @property
    def dialect(self) -> Dialect: ...

    @property
    def schema_version(self) -> int: ...

    def transaction(self) -> AbstractAsyncContextManager[Store]: ...

    def read(self) -> AbstractAsyncContextManager[Store]: ...

    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None: ...

    async def maintain(self) -> None:
        """Upkeep a long-running bot asks for now and then (planner statistics)."""
        ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...


class DatabaseBase:
    """What both backends do alike on top of their own `transaction()`, `read()` and
    `close()`: the stored facts, and `async with`."""

    def transaction(self) -> AbstractAsyncContextManager[Store]:
        raise NotImplementedError

    def read(self) -> AbstractAsyncContextManager[Store]:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def get_meta(self, key: str) -> str | None:
        async with self.read() as store:
            return await store.get_meta(key)

    async def set_meta(self, key: str, value: str) -> None:
        async with self.transaction() as store:
            await store.set_meta(key, value)

    async def maintain(self) -> None:
        """Nothing by default (PostgreSQL's autovacuum keeps its statistics)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def bundled_migrations(dialect: Dialect) -> list[Migration]:
    """The numbered `.sql` files shipped in `storage/migrations/<dialect>/`, in order."""
    folder = resources.files("storage").joinpath("migrations").joinpath(dialect)
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    return checked_migrations(found)


def checked_migrations(migrations: Iterable[Migration]) -> list[Migration]:
    ordered = sorted(migrations, key=lambda m: m.version)
    for expected, migration in enumerate(ordered, start=1):
        if migration.version != expected:
            raise StorageError(
                f"migrations must be numbered 1, 2, 3 … without gaps; found {migration.name} "
                f"where version {expected} was expected"
            )
    return ordered


def is_postgres_url(url: str) -> bool:
    return urlsplit(url).scheme in POSTGRES_SCHEMES


def describe_url(url: str) -> str:
    """Where a database URL points, for messages and logs: host, port and database, never
    the user's password."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an unreadable DATABASE_URL)"
    return f"{host}{port}{parts.path or '/'}"


def url_password(url: str) -> str | None:
    """The password a database URL carries, so logs and messages can hide it."""
    try:
        return urlsplit(url).password or None
    except ValueError:
        return None
