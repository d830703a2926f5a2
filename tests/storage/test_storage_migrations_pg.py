"""Opening and migrating PostgreSQL: the counterparts of the SQLite file tests (fresh, old,
newer, a failing migration), migrations serialised between processes, the ledger's
triggers, and the two dialects' schemas kept in step."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest

from storage import (
    Migration,
    MigrationError,
    SchemaTooNewError,
    SQLiteDatabase,
    StorageError,
    bundled_migrations,
    open_database,
)
from storage.postgres import PostgresDatabase, lock_id, numbered_placeholders
from tests.backends import EXPECTED_TABLES, INTEGRITY_ERRORS, PgSchema, postgres_url


@pytest.fixture
async def schema() -> AsyncIterator[PgSchema]:
    async with PgSchema.create(await postgres_url()) as created:
        yield created


async def open_pg(schema: PgSchema, migrations: list[Migration] | None = None) -> PostgresDatabase:
    return await PostgresDatabase.open(
        schema.server_url, migrations=migrations, server_settings=schema.server_settings
    )


async def tables(schema: PgSchema) -> set[str]:
    rows = await schema.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", schema.name)
    return {row["tablename"] for row in rows} - {"schema_migrations"}


async def version(schema: PgSchema) -> int:
    [row] = await schema.fetch("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
    return int(row["v"])


def test_bundled_migrations_of_both_dialects_are_numbered_alike_and_shipped() -> None:
    sqlite, postgres = bundled_migrations("sqlite"), bundled_migrations("postgres")
    assert [m.name for m in postgres] == [m.name for m in sqlite]
    assert [m.version for m in postgres] == list(range(1, len(postgres) + 1))
    assert "CREATE TABLE ledger" in postgres[0].sql


def test_both_dialects_create_the_same_indexes_and_triggers() -> None:
    def names(kind: str, sql: str) -> set[str]:
        return set(re.findall(rf"CREATE (?:UNIQUE )?{kind} (\w+)", sql))

    for sqlite, postgres in zip(
        bundled_migrations("sqlite"), bundled_migrations("postgres"), strict=True
    ):
        assert names("TABLE", sqlite.sql) == names("TABLE", postgres.sql)
        assert names("INDEX", sqlite.sql) == names("INDEX", postgres.sql)
        assert names("TRIGGER", sqlite.sql) <= names("TRIGGER", postgres.sql)


async def test_both_dialects_have_the_same_columns(schema: PgSchema, db_path: Path) -> None:
    await (await SQLiteDatabase.open(db_path)).close()
    await (await open_pg(schema)).close()
    with sqlite3.connect(db_path) as conn:
        lite = {
            (table, row[1], bool(row[3]))
            for table in EXPECTED_TABLES
            for row in conn.execute(f"PRAGMA table_info({table})")
        }
    rows = await schema.fetch(
        "SELECT table_name, column_name, is_nullable FROM information_schema.columns "
        "WHERE table_schema = $1 AND table_name <> 'schema_migrations'",
        schema.name,
    )
    pg = {(r["table_name"], r["column_name"], r["is_nullable"] == "NO") for r in rows}
    # NOT NULL alike, except primary keys, which SQLite reports as nullable.
    assert {(t, c) for t, c, _ in lite} == {(t, c) for t, c, _ in pg}
    assert {x for x in lite if x[2]} <= pg


async def test_a_fresh_schema_gets_every_table_and_the_latest_version(schema: PgSchema) -> None:
    db = await open_pg(schema)
    try:
        assert db.schema_version == len(bundled_migrations("postgres"))
        assert db.dialect == "postgres"
        assert await db.get_meta("anything") is None
    finally:
        await db.close()
    assert await tables(schema) == EXPECTED_TABLES
    assert await version(schema) == len(bundled_migrations("postgres"))


async def test_reopening_a_current_schema_changes_nothing(schema: PgSchema) -> None:
    db = await open_pg(schema)
    await db.set_meta("tree", "abc")
    await db.close()
    db = await open_pg(schema)
    try:
        assert await db.get_meta("tree") == "abc"
    finally:
        await db.close()
    rows = await schema.fetch("SELECT version FROM schema_migrations")
    assert len(rows) == len(bundled_migrations("postgres"))


V1 = Migration(1, "001_a.sql", "CREATE TABLE a (x INTEGER);\nINSERT INTO a VALUES (1);\n")
V2 = Migration(
    2,
    "002_b.sql",
    "-- a comment; with a semicolon\nALTER TABLE a ADD COLUMN y TEXT DEFAULT 'new';\n"
    "CREATE FUNCTION a_guard() RETURNS trigger LANGUAGE plpgsql AS $$\n"
    "BEGIN RAISE EXCEPTION 'no; never'; END;\n$$;\n"
    "CREATE TRIGGER a_guard BEFORE DELETE ON a FOR EACH ROW EXECUTE FUNCTION a_guard();\n",
)


async def test_version_one_is_migrated_to_two_keeping_its_rows(schema: PgSchema) -> None:
    await (await open_pg(schema, [V1])).close()
    db = await open_pg(schema, [V1, V2])
    assert db.schema_version == 2
    await db.close()
    assert await version(schema) == 2
    assert [tuple(r) for r in await schema.fetch("SELECT x, y FROM a")] == [(1, "new")]
    with pytest.raises(asyncpg.RaiseError, match="never"):
        await schema.execute("DELETE FROM a")


async def test_a_failing_migration_leaves_the_schema_as_it_was(schema: PgSchema) -> None:
    await (await open_pg(schema, [V1])).close()
    broken = Migration(
        2, "002_broken.sql", "CREATE TABLE b (x INTEGER);\nINSERT INTO nowhere VALUES (1);\n"
    )
    with pytest.raises(MigrationError, match=r"002_broken.sql failed .*version 1"):
        await open_pg(schema, [V1, broken])
    assert await version(schema) == 1
    assert "b" not in await tables(schema)  # the whole step rolled back, not half of it


async def test_all_pending_migrations_apply_in_one_transaction(schema: PgSchema) -> None:
    broken = Migration(2, "002_broken.sql", "SELECT * FROM nowhere;\n")
    with pytest.raises(MigrationError):
        await open_pg(schema, [V1, broken])
    assert await tables(schema) == set()
    assert (
        await schema.fetch("SELECT 1 FROM pg_tables WHERE schemaname = $1", schema.name) == []
    )  # not even the version table


async def test_a_newer_schema_is_refused_and_left_untouched(schema: PgSchema) -> None:
    await (await open_pg(schema)).close()
    newest = len(bundled_migrations("postgres"))
    await schema.execute(
        "INSERT INTO schema_migrations VALUES ($1, '999_future.sql', 'later')", newest + 1
    )
    with pytest.raises(SchemaTooNewError, match=r"newer version of the bot") as caught:
        await open_pg(schema)
    assert f"schema version {newest + 1}" in str(caught.value)
    assert isinstance(caught.value, StorageError)
    assert await version(schema) == newest + 1


async def test_processes_starting_together_migrate_once(schema: PgSchema) -> None:
    """Five pools (as five processes would) open a fresh schema at once: the advisory lock
    lets one migrate; the others find it done."""
    opened = await asyncio.gather(*(open_pg(schema) for _ in range(5)))
    for db in opened:
        assert db.schema_version == len(bundled_migrations("postgres"))
        await db.close()
    rows = await schema.fetch("SELECT version FROM schema_migrations")
    assert len(rows) == len(bundled_migrations("postgres"))


async def test_migrations_with_a_gap_are_refused(schema: PgSchema) -> None:
    with pytest.raises(StorageError, match="without gaps"):
        await open_pg(schema, [V1, Migration(3, "003_c.sql", "SELECT 1;")])


async def test_the_ledger_refuses_update_delete_and_truncate(
    schema: PgSchema, t0: datetime
) -> None:
    db = await open_pg(schema)
    try:
        async with db.transaction() as store:
            await store.add_ledger(guild_id=1, user_id=2, kind="grant", amount=5, actor="9", at=t0)
    finally:
        await db.close()
    for statement in (
        "UPDATE ledger SET amount = 500",
        "UPDATE ledger SET amount = 1 WHERE id < 0",  # even one that matches nothing
        "DELETE FROM ledger",
        "TRUNCATE ledger",
    ):
        with pytest.raises(INTEGRITY_ERRORS, match="append-only"):
            await schema.execute(statement)
    assert len(await schema.fetch("SELECT * FROM ledger WHERE amount = 5")) == 1


async def test_a_server_that_does_not_answer_is_a_storage_error_without_the_password(
    tmp_path: Path,
) -> None:
    url = "postgresql://bot:s3cret-pw@127.0.0.1:1/nowhere"
    with pytest.raises(StorageError, match=r"cannot connect .*127\.0\.0\.1:1/nowhere") as caught:
        await open_database(url, tmp_path / "unused.sqlite3")
    assert "s3cret-pw" not in str(caught.value)


def test_placeholders_are_numbered_outside_quotes() -> None:
    sql = "SELECT '?', \"a?\" FROM t WHERE a = ? AND b IN (?, ?) AND c = 'it''s ?'"
    assert numbered_placeholders(sql) == (
        "SELECT '?', \"a?\" FROM t WHERE a = $1 AND b IN ($2, $3) AND c = 'it''s ?'"
    )
    assert numbered_placeholders(sql) is numbered_placeholders(sql)  # translated once


def test_lock_ids_are_stable_signed_64_bit_numbers() -> None:
    ids = {lock_id(f"member:1:{n}") for n in range(1000)}
    assert len(ids) == 1000
    assert all(-(2**63) <= i < 2**63 for i in ids)
    assert lock_id("operator") == lock_id("operator") == -7579159194296284018
