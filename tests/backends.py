"""The two stores a test can run on: a fresh SQLite file, or a PostgreSQL schema of its own.

PostgreSQL tests reach the server at `TEST_DATABASE_URL` (default
postgresql://postgres@127.0.0.1:5432/test). Each test gets a uniquely named schema (tables,
sequences and triggers all live in it, reached through `search_path`), dropped afterwards,
so tests never see each other's rows and may run in parallel. Where no server answers, the
PostgreSQL tests are skipped, except under CI=true, where that is a failure: CI must run
them.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from storage import Database, Migration, SQLiteDatabase
from storage.postgres import PostgresDatabase

BACKENDS = ("sqlite", "postgres")
DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
# What each dialect raises when a constraint, a unique index or a ledger trigger refuses.
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (
    sqlite3.IntegrityError,
    asyncpg.IntegrityConstraintViolationError,
)

# The tables the first migration makes, and every table of the schema today.
INITIAL_TABLES = {"meta", "guild_settings", "member_quota", "jobs", "ledger"}
EXPECTED_TABLES = INITIAL_TABLES | {
    "role_allowances",
    "member_totals",
    "learned_durations",
    "processes",
    "api_requests",
    "api_budgets",
}

_probe: tuple[str, str | None] | None = None  # (url, why it is unusable or None)


def configured_url() -> str:
    return os.environ.get("TEST_DATABASE_URL") or DEFAULT_TEST_DATABASE_URL


async def postgres_url() -> str:
    """The test server's URL; skips the test (fails it under CI=true) when none answers."""
    global _probe
    url = configured_url()
    if _probe is None or _probe[0] != url:
        problem: str | None = None
        try:
            conn = await asyncpg.connect(url, timeout=3)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            problem = f"no PostgreSQL server answers at TEST_DATABASE_URL ({error})"
        else:
            await conn.close()
        _probe = (url, problem)
    reason = _probe[1]
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI=true: the PostgreSQL tests must run in CI")
        pytest.skip(reason)
    return url


class PgSchema:
    """A schema of its own on the test server; `url` reaches it (for subprocesses)."""

    def __init__(self, server_url: str, name: str) -> None:
        self.server_url = server_url
        self.name = name

    @property
    def url(self) -> str:
        # asyncpg passes unknown URL query parameters on as server settings.
        joiner = "&" if "?" in self.server_url else "?"
        return f"{self.server_url}{joiner}search_path={self.name}"

    @property
    def server_settings(self) -> dict[str, str]:
        return {"search_path": self.name}

    async def execute(self, sql: str, *args: Any) -> str:
        """Run one statement in the schema on a connection of its own."""
        conn = await asyncpg.connect(self.server_url, server_settings=self.server_settings)
        try:
            return await conn.execute(sql, *args)
        finally:
            await conn.close()

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.server_url, server_settings=self.server_settings)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    @classmethod
    @contextlib.asynccontextmanager
    async def create(cls, server_url: str) -> AsyncIterator[PgSchema]:
        name = f"test_{uuid.uuid4().hex[:16]}"
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'CREATE SCHEMA "{name}"')
            try:
                yield cls(server_url, name)
            finally:
                await admin.execute(f'DROP SCHEMA "{name}" CASCADE')
        finally:
            await admin.close()


class Backend:
    """Where one test's database lives; `open()` opens it (again) as often as the test
    likes, and every database opened is closed when the test ends."""

    def __init__(self, name: str, path: Path, schema: PgSchema | None) -> None:
        self.name = name
        self.path = path  # the SQLite file (also passed, unused, to PostgreSQL)
        self.schema = schema
        self._opened: list[Database] = []

    @property
    def url(self) -> str | None:
        """DATABASE_URL for a process of its own (None for SQLite)."""
        return None if self.schema is None else self.schema.url

    async def open(self, *, migrations: Sequence[Migration] | None = None) -> Database:
        database: Database
        if self.schema is None:
            database = await SQLiteDatabase.open(self.path, migrations=migrations)
        else:
            database = await PostgresDatabase.open(
                self.schema.server_url,
                migrations=migrations,
                server_settings=self.schema.server_settings,
                min_connections=1,
                max_connections=10,
            )
        self._opened.append(database)
        return database

    async def close_all(self) -> None:
        for database in self._opened:
            await database.close()


@contextlib.asynccontextmanager
async def make_backend(name: str, folder: Path) -> AsyncIterator[Backend]:
    path = folder / "data" / "bot.sqlite3"
    if name == "sqlite":
        backend = Backend(name, path, None)
        try:
            yield backend
        finally:
            await backend.close_all()
        return
    async with PgSchema.create(await postgres_url()) as schema:
        backend = Backend(name, path, schema)
        try:
            yield backend
        finally:
            await backend.close_all()
