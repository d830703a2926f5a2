"""`python -m bot copy-database`: a SQLite deployment (jobs in every state, every kind of
ledger row, settings, meta) moves into an empty PostgreSQL database with its ids, balances
and row counts intact; a target with data is refused; the source is never changed."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.copying import copy_to_postgres
from bot.core import Core
from storage import JobState, SQLiteDatabase, StoreInUseError, open_database, sqlite_process_lock
from storage.copy import (
    DERIVED,
    RUNTIME,
    TABLES,
    CopyMismatchError,
    TargetNotEmptyError,
    copy_database,
)
from storage.postgres import PostgresDatabase
from tests.backends import PgSchema, postgres_url
from tests.core.jobkit import (
    FakeAPI,
    bad_request,
    make_settings,
    outcome_unknown,
    request,
    result,
)
from tests.shared import Clock

ROOT = Path(__file__).resolve().parents[2]
GUILD, OTHER_GUILD, USER, FRIEND, MOD = 1, 2, 10, 11, 99
PASSWORD = "copy-pass-8c4e1f"  # the test server trusts loopback: any password works


async def build_deployment(path: Path) -> None:
    """What a SQLite bot leaves after a while: every job state, every ledger kind."""
    clock = Clock()
    db = await SQLiteDatabase.open(path)
    try:
        api = FakeAPI()
        core = Core.build(db, api, make_settings(), clock=clock)
        mod = core.moderation
        await mod.set_allowance(GUILD, USER, 1000, MOD)
        await mod.set_guild_default(GUILD, 200, "day", MOD)
        await mod.update_guild_settings(GUILD, MOD, max_concurrent=20, daily_cap=5000)
        await mod.update_guild_settings(OTHER_GUILD, MOD, allowed_channels=[5, 6])
        await mod.grant_bonus(GUILD, FRIEND, 50, "welcome", MOD)
        await mod.set_role_allowance(GUILD, 501, 300, MOD)
        await db.set_meta("command-tree", "hash-1")

        # Ended by time first: EXPIRED (no answer) and LOST (outcome never known).
        expiring = await core.submitting.submit(request())
        api.failures.append(outcome_unknown())
        lost = await core.submitting.submit(request())
        clock.advance(hours=4)
        ended = {job.id: job.state for job in await core.housekeeping.expire_overdue()}
        assert ended == {expiring.id: JobState.EXPIRED, lost.id: JobState.LOST}

        queued = await core.submitting.submit(request())
        processing = await core.submitting.submit(request(user=FRIEND))
        await core.lifecycle.apply_result(processing.id, result("PROCESSING", progress=40))
        ids = {}
        for name in ("succeeded", "delivered", "undeliverable", "failed"):
            ids[name] = (await core.submitting.submit(request())).id
            status = "FAILED" if name == "failed" else "SUCCEED"
            await core.lifecycle.apply_result(ids[name], result(status))
        await core.lifecycle.mark_delivered(ids["delivered"], 4242)
        await core.lifecycle.mark_undeliverable(ids["undeliverable"], "channel gone")
        api.failures.append(bad_request())
        rejected = await core.submitting.submit(request())
        api.failures.append(outcome_unknown())
        submitting = await core.submitting.submit(request(reroll_of=ids["delivered"]))

        await mod.reset_usage(GUILD, USER, MOD)
        await mod.block(GUILD, FRIEND, MOD, "spam")
        await mod.unblock(GUILD, FRIEND, MOD)
        await mod.clear_allowance(GUILD, FRIEND, MOD)
        async with db.read() as store:
            states = {job.state for job in await store.jobs_in_states(list(JobState))}
            kinds = {entry.kind for entry in await store.ledger_entries()}
        assert states == set(JobState), states
        assert kinds == {
            "hold", "commit", "release", "grant", "set", "reset", "block", "unblock", "default"
        }  # fmt: skip
        assert queued.state is JobState.QUEUED and rejected.state is JobState.REJECTED
        assert submitting.state is JobState.SUBMITTING
    finally:
        await db.close()


def sqlite_rows(path: Path, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY 1, 2").fetchall()


def sqlite_columns(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def sqlite_tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        return {row[0] for row in rows}


def max_id(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT MAX(id) FROM {table}").fetchone()[0])


def fingerprint(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


@pytest.fixture
async def schema() -> AsyncIterator[PgSchema]:
    async with PgSchema.create(await postgres_url()) as created:
        yield created


@pytest.fixture
async def source(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "bot.sqlite3"
    await build_deployment(path)
    return path


def target_url(schema: PgSchema) -> str:
    with_password = schema.url.replace("://postgres@", f"://postgres:{PASSWORD}@", 1)
    assert PASSWORD in with_password, "TEST_DATABASE_URL must name the user postgres@"
    return with_password


async def test_every_row_moves_with_its_id_and_every_balance_matches(
    source: Path, schema: PgSchema
) -> None:
    before = fingerprint(source)
    said: list[str] = []
    report = await copy_to_postgres(make_settings(), source, target_url(schema), said.append)
    assert fingerprint(source) == before  # the source was only read

    assert report.ok
    # Every table of the schema is copied (a table added by a migration must be listed).
    assert {t.table for t in report.tables} == set(TABLES)
    assert set(TABLES) | set(DERIVED) | set(RUNTIME) == sqlite_tables(source)
    assert all(t.source == t.target > 0 for t in report.tables), report.tables
    assert {(m.guild_id, m.user_id) for m in report.members} == {(GUILD, USER), (GUILD, FRIEND)}
    [table] = said
    assert "every count and balance matches" in table and PASSWORD not in table
    assert "ledger" in table and "left" in table

    for name in TABLES:
        columns = sqlite_columns(source, name)
        rows = await schema.fetch(f"SELECT {', '.join(columns)} FROM {name} ORDER BY 1, 2")
        assert [tuple(r) for r in rows] == sqlite_rows(source, name, columns), name

    # New rows continue after the copied ids, and the ledger is append-only there too.
    target = await PostgresDatabase.open(schema.server_url, server_settings=schema.server_settings)
    try:
        api = FakeAPI()
        api._next = 1000  # task ids the copied jobs do not have
        core = Core.build(target, api, make_settings(), clock=Clock())
        job = await core.submitting.submit(request(user=FRIEND))
        async with target.read() as store:
            holds = await store.job_ledger(job.id)
    finally:
        await target.close()
    assert job.id == max_id(source, "jobs") + 1
    assert holds and min(h.id for h in holds) == max_id(source, "ledger") + 1


async def test_a_target_that_holds_data_is_refused_and_left_as_it_was(
    source: Path, schema: PgSchema
) -> None:
    target = await PostgresDatabase.open(schema.server_url, server_settings=schema.server_settings)
    await target.set_meta("someone", "else")
    await target.close()
    with pytest.raises(TargetNotEmptyError, match=r"already holds data \(1 in meta\)"):
        await copy_to_postgres(make_settings(), source, target_url(schema), print)
    assert [tuple(r) for r in await schema.fetch("SELECT * FROM meta")] == [("someone", "else")]
    assert await schema.fetch("SELECT * FROM jobs") == []


async def test_a_copy_that_does_not_match_is_rolled_back(source: Path, schema: PgSchema) -> None:
    async def disagree(store: Any, guild_id: int, user_id: int) -> object:
        return store.writable  # the target's store is the writable one: never equal

    src = await SQLiteDatabase.open(source, read_only=True)
    dst = await open_database(schema.url, source)
    try:
        with pytest.raises(CopyMismatchError, match="rolled back"):
            await copy_database(src, dst, measure=disagree)
    finally:
        await dst.close()
        await src.close()
    for name in TABLES:
        assert await schema.fetch(f"SELECT 1 FROM {name}") == [], name


async def test_a_bot_still_running_on_the_file_stops_the_copy(
    source: Path, schema: PgSchema
) -> None:
    with sqlite_process_lock(source), pytest.raises(StoreInUseError):
        await copy_to_postgres(make_settings(), source, schema.url, print)
    assert await schema.fetch("SELECT 1 FROM pg_tables WHERE schemaname = $1", schema.name) == []


def run_copy(source: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "NOVITA_"))}
    env.update({"PYTHONPATH": str(ROOT), "DATABASE_PATH": str(source)})
    return subprocess.run(
        [sys.executable, "-m", "bot", "copy-database", *args],
        cwd=source.parent,  # no .env there
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_python_m_bot_copy_database(source: Path, schema: PgSchema) -> None:
    before = fingerprint(source)
    url = target_url(schema)
    first = run_copy(source, "--to", url)
    assert first.returncode == 0, first.stderr
    assert "every count and balance matches" in first.stdout
    assert PASSWORD not in first.stdout + first.stderr

    again = run_copy(source, "--to", url)
    assert again.returncode == 2
    [line] = again.stderr.strip().splitlines()
    assert "already holds data" in line and PASSWORD not in line

    wrong = run_copy(source, "--to", "mysql://x@y/z")
    assert wrong.returncode == 2 and "--to must be a postgresql://" in wrong.stderr
    missing = run_copy(source, "--to", url, "--from", str(source.parent / "nothing.sqlite3"))
    assert missing.returncode == 2 and "there is no SQLite database" in missing.stderr
    assert fingerprint(source) == before
