"""Opening and migrating SQLite: fresh, old, newer and broken database files (PostgreSQL:
`test_storage_migrations_pg.py`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from storage import (
    CorruptDatabaseError,
    Migration,
    MigrationError,
    ReadOnlyStoreError,
    SchemaTooNewError,
    SQLiteDatabase,
    StorageError,
    bundled_migrations,
)
from storage.sqlite import split_statements
from tests.backends import EXPECTED_TABLES, INITIAL_TABLES


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'").fetchall()
    return {row[0] for row in rows} - {"sqlite_sequence"}


def read_bytes(path: Path) -> bytes:
    return path.read_bytes()


def fingerprint(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def exists(path: Path) -> bool:
    return path.exists()


def write_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def test_bundled_migrations_are_numbered_from_one_and_shipped_as_package_data() -> None:
    migrations = bundled_migrations("sqlite")
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "001_initial.sql"
    assert "CREATE TABLE ledger" in migrations[0].sql


async def test_fresh_database_gets_every_table_and_the_latest_version(db_path: Path) -> None:
    db = await SQLiteDatabase.open(db_path)
    try:
        assert db.schema_version == len(bundled_migrations("sqlite"))
        async with db.read() as store:
            assert await store.get_meta("anything") is None
        conn = db._conn
        [journal] = await conn.execute_fetchall("PRAGMA journal_mode")
        [foreign_keys] = await conn.execute_fetchall("PRAGMA foreign_keys")
        [busy] = await conn.execute_fetchall("PRAGMA busy_timeout")
        assert (journal[0], foreign_keys[0]) == ("wal", 1)
        assert busy[0] > 0
    finally:
        await db.close()
    assert tables(db_path) >= EXPECTED_TABLES
    assert user_version(db_path) == len(bundled_migrations("sqlite"))


async def test_reopening_a_current_database_changes_nothing(db_path: Path) -> None:
    db = await SQLiteDatabase.open(db_path)
    await db.set_meta("tree", "abc")
    await db.close()
    db = await SQLiteDatabase.open(db_path)
    try:
        assert await db.get_meta("tree") == "abc"
        assert db.schema_version == len(bundled_migrations("sqlite"))
    finally:
        await db.close()


async def test_old_version_zero_file_is_migrated_and_keeps_foreign_data(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as conn:  # an empty SQLite file made by something else
        conn.execute("CREATE TABLE notes (text TEXT)")
        conn.execute("INSERT INTO notes VALUES ('keep me')")
    assert user_version(db_path) == 0
    db = await SQLiteDatabase.open(db_path)
    await db.close()
    assert user_version(db_path) == len(bundled_migrations("sqlite"))
    assert EXPECTED_TABLES | {"notes"} <= tables(db_path)
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT text FROM notes").fetchall() == [("keep me",)]


V1 = Migration(1, "001_a.sql", "CREATE TABLE a (x INTEGER);\nINSERT INTO a VALUES (1);\n")
V2 = Migration(
    2,
    "002_b.sql",
    "-- a comment; with a semicolon\nALTER TABLE a ADD COLUMN y TEXT DEFAULT 'new';\n"
    "CREATE TRIGGER a_guard BEFORE DELETE ON a\nBEGIN\n"
    "    SELECT RAISE(ABORT, 'no; never');\nEND;\n",
)


async def test_version_one_database_is_migrated_to_two_keeping_its_rows(db_path: Path) -> None:
    db = await SQLiteDatabase.open(db_path, migrations=[V1])
    assert db.schema_version == 1
    await db.close()
    db = await SQLiteDatabase.open(db_path, migrations=[V1, V2])
    assert db.schema_version == 2
    await db.close()
    assert user_version(db_path) == 2
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT x, y FROM a").fetchall() == [(1, "new")]
        with pytest.raises(sqlite3.IntegrityError, match="never"):
            conn.execute("DELETE FROM a")


async def test_a_failing_migration_leaves_the_database_as_it_was(db_path: Path) -> None:
    db = await SQLiteDatabase.open(db_path, migrations=[V1])
    await db.close()
    broken = Migration(
        2, "002_broken.sql", "CREATE TABLE b (x);\nINSERT INTO nowhere VALUES (1);\n"
    )
    with pytest.raises(MigrationError, match=r"002_broken.sql failed .*version 1"):
        await SQLiteDatabase.open(db_path, migrations=[V1, broken])
    assert user_version(db_path) == 1
    assert "b" not in tables(db_path)  # the whole step rolled back, not half of it


async def test_all_pending_migrations_apply_in_one_transaction(db_path: Path) -> None:
    broken = Migration(2, "002_broken.sql", "SELECT * FROM nowhere;\n")
    with pytest.raises(MigrationError):
        await SQLiteDatabase.open(db_path, migrations=[V1, broken])
    assert user_version(db_path) == 0
    assert "a" not in tables(db_path)


async def test_a_newer_database_is_refused_and_left_untouched(db_path: Path) -> None:
    db = await SQLiteDatabase.open(db_path)
    await db.close()
    newest = len(bundled_migrations("sqlite"))
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {newest + 1}")
    before = read_bytes(db_path)
    with pytest.raises(SchemaTooNewError, match=r"newer version of the bot") as caught:
        await SQLiteDatabase.open(db_path)
    assert f"schema version {newest + 1}" in str(caught.value)
    assert isinstance(caught.value, StorageError)
    assert read_bytes(db_path) == before
    assert user_version(db_path) == newest + 1


async def test_a_file_that_is_not_a_database_is_refused_and_never_replaced(
    db_path: Path,
) -> None:
    db_path.parent.mkdir(parents=True)
    garbage = b"this is a text file, not SQLite\n" * 200
    write_bytes(db_path, garbage)
    with pytest.raises(CorruptDatabaseError, match="not a usable SQLite database") as caught:
        await SQLiteDatabase.open(db_path)
    assert str(db_path) in str(caught.value)
    assert read_bytes(db_path) == garbage


async def test_a_damaged_database_is_refused(db_path: Path) -> None:
    db = await SQLiteDatabase.open(db_path)
    async with db.transaction() as store:
        for n in range(400):
            await store.set_meta(f"key-{n}", "x" * 200)
    await db.close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(read_bytes(db_path))
    assert len(data) > 6 * page_size
    for offset in range(2 * page_size, 6 * page_size):  # scribble over b-tree pages
        data[offset] = 0xA5
    write_bytes(db_path, bytes(data))
    with pytest.raises(CorruptDatabaseError):
        await SQLiteDatabase.open(db_path)


async def test_a_directory_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(CorruptDatabaseError, match="directory"):
        await SQLiteDatabase.open(tmp_path)


async def test_missing_parent_directories_are_created(tmp_path: Path) -> None:
    db = await SQLiteDatabase.open(tmp_path / "a" / "b" / "bot.sqlite3")
    await db.close()
    assert (tmp_path / "a" / "b" / "bot.sqlite3").is_file()


async def test_migrations_with_a_gap_are_refused(db_path: Path) -> None:
    with pytest.raises(StorageError, match="without gaps"):
        await SQLiteDatabase.open(db_path, migrations=[V1, Migration(3, "003_c.sql", "SELECT 1;")])


def test_split_statements_keeps_triggers_whole_and_drops_comments() -> None:
    statements = split_statements(V2.sql)
    assert len(statements) == 2
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
    with pytest.raises(StorageError, match="incomplete"):
        split_statements("CREATE TABLE x (a INTEGER)")


def test_the_bundled_schema_splits_into_statements() -> None:
    statements = split_statements(bundled_migrations("sqlite")[0].sql)
    assert sum(s.startswith("CREATE TABLE") for s in statements) == len(INITIAL_TABLES)
    assert sum(s.startswith("CREATE TRIGGER") for s in statements) == 2


async def test_a_read_only_open_never_writes_to_the_file(db_path: Path) -> None:
    db = await SQLiteDatabase.open(db_path)
    await db.set_meta("kept", "yes")
    await db.close()
    before = fingerprint(db_path)
    reader = await SQLiteDatabase.open(db_path, read_only=True)
    try:
        assert await reader.get_meta("kept") == "yes"
        with pytest.raises(ReadOnlyStoreError, match="read-only"):
            async with reader.transaction():
                pass
    finally:
        await reader.close()
    assert fingerprint(db_path) == before


async def test_a_read_only_open_refuses_a_missing_or_older_file(db_path: Path) -> None:
    with pytest.raises(StorageError, match="no SQLite database"):
        await SQLiteDatabase.open(db_path, read_only=True)
    assert not exists(db_path)
    await (await SQLiteDatabase.open(db_path, migrations=[V1])).close()
    with pytest.raises(StorageError, match="schema version 1, not 2"):
        await SQLiteDatabase.open(db_path, migrations=[V1, V2], read_only=True)
    assert user_version(db_path) == 1
