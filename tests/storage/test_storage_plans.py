"""The queries every tick runs, and the walks at start, read through their own indexes on
SQLite, with or without planner statistics: their cost follows what is due (or running),
not how many jobs there have been."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from storage import SQLiteDatabase
from storage.jobs import ACTIVE_SQL

# (the statement as the store sends it, with placeholders; the index it must search)
HOT = {
    "give-up check": (
        "SELECT id FROM jobs WHERE give_up_at IS NOT NULL AND give_up_at <= ? "
        "AND NOT (task_id IS NULL AND lease_until IS NOT NULL AND lease_until > ? "
        "AND COALESCE(lease_owner, '') <> ?) ORDER BY give_up_at, id LIMIT ?",
        "jobs_give_up",
    ),
    "leases held": (
        "SELECT COUNT(*) AS n FROM jobs WHERE lease_owner = ? AND lease_until > ?",
        "jobs_by_lease",
    ),
    "earlier lives' leases": (
        "SELECT id FROM jobs WHERE lease_owner > ? AND lease_owner < ? AND lease_owner <> ?",
        "jobs_by_lease",
    ),
}

# Run at start, after `SQLiteDatabase.open` has analyzed the file (as the bot always does).
AT_START = {
    "recovery's walk over running jobs": (
        f"SELECT id, next_poll_at FROM jobs WHERE {ACTIVE_SQL} AND task_id IS NOT NULL "
        "AND id > ? ORDER BY id LIMIT ?",
        "jobs_active",
    ),
    "recovery's walk over jobs without a give-up time": (
        f"SELECT id FROM jobs WHERE {ACTIVE_SQL} AND give_up_at IS NULL AND id > ? "
        "ORDER BY id LIMIT ?",
        "jobs_active",
    ),
}


@pytest.mark.parametrize("statistics", [False, True], ids=["no statistics", "analyzed"])
@pytest.mark.parametrize("query", sorted(HOT))
async def test_hot_queries_search_their_index(db_path: Path, query: str, statistics: bool) -> None:
    await _busy_bot(db_path)
    with sqlite3.connect(db_path) as conn:
        if statistics:
            conn.execute("ANALYZE")
        else:
            conn.execute("DELETE FROM sqlite_stat1")
        _assert_searches(conn, *HOT[query])


@pytest.mark.parametrize("query", sorted(AT_START))
async def test_walks_at_start_search_their_index(db_path: Path, query: str) -> None:
    await _busy_bot(db_path)
    await (await SQLiteDatabase.open(db_path)).close()  # the start: open analyzes the file
    with sqlite3.connect(db_path) as conn:
        _assert_searches(conn, *AT_START[query])


async def _busy_bot(db_path: Path) -> None:
    """A database file with 5,000 running jobs and 20,000 finished ones."""
    await (await SQLiteDatabase.open(db_path)).close()
    with sqlite3.connect(db_path) as conn:
        conn.executemany(
            "INSERT INTO jobs (guild_id, channel_id, user_id, model, params, price, state, "
            "give_up_at, created_at, updated_at) VALUES (1, 1, 1, 'm', '{}', 1, ?, ?, 't', 't')",
            [("QUEUED", f"2025-{n:06d}") for n in range(5000)]
            + [("DELIVERED", None) for _ in range(20000)],
        )


def _assert_searches(conn: sqlite3.Connection, sql: str, index: str) -> None:
    plan = " ".join(
        str(row[3])
        for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", (1, 2, 3, 4)[: sql.count("?")])
    )
    assert f"USING INDEX {index}" in plan or f"USING COVERING INDEX {index}" in plan, plan
