"""Opening the database the settings name: PostgreSQL with `DATABASE_URL`, else SQLite."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from storage.database import Database, Migration, StorageError, is_postgres_url
from storage.sqlite import SQLiteDatabase


async def open_database(
    url: str | None,
    path: Path,
    *,
    migrations: Sequence[Migration] | None = None,
    server_settings: Mapping[str, str] | None = None,
    min_connections: int = 1,
    max_connections: int = 10,
) -> Database:
    """PostgreSQL when `url` (DATABASE_URL) is set, else the SQLite file at `path`; either
    way open, checked and migrated."""
    if url:
        if not is_postgres_url(url):
            raise StorageError(
                "DATABASE_URL must be a postgresql://user:password@host:port/dbname URL"
            )
        # Imported here: a one-process SQLite bot never loads the PostgreSQL driver.
        from storage.postgres import PostgresDatabase

        return await PostgresDatabase.open(
            url,
            migrations=migrations,
            server_settings=server_settings,
            min_connections=min_connections,
            max_connections=max_connections,
        )
    return await SQLiteDatabase.open(path, migrations=migrations)
