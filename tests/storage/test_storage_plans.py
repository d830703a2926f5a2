"""The queries every tick runs read through their own indexes on SQLite, with or without
planner statistics: their cost follows what is due, not how many jobs there are."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from storage import SQLiteDatabase

# (the statement as the store sends it, with placeholders; the index it must search)
HOT = {
    "give-up check": (
        "SELECT id FROM jobs WHERE give_up_at IS NOT NULL AND give_up_at <= ? "
        "ORDER BY give_up_at, id LIMIT ?",
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


@pytest.mark.parametrize("statistics", [False, True], ids=["no statistics", "analyzed"])
@pytest.mark.parametrize("query", sorted(HOT))
async def test_hot_queries_search_their_index(db_path: Path, query: str, statistics: bool) -> None:
    await (await SQLiteDatabase.open(db_path)).close()
    with sqlite3.connect(db_path) as conn:
        # 5,000 running jobs and 20,000 finished ones, as a busy bot has.
        conn.executemany(
            "INSERT INTO jobs (guild_id, channel_id, user_id, model, params, price, state, "
            "give_up_at, created_at, updated_at) VALUES (1, 1, 1, 'm', '{}', 1, ?, ?, 't', 't')",
            [("QUEUED", f"2025-{n:06d}") for n in range(5000)]
            + [("DELIVERED", None) for _ in range(20000)],
        )
        if statistics:
            conn.execute("ANALYZE")
        else:
            conn.execute("DELETE FROM sqlite_stat1")
        sql, index = HOT[query]
        plan = " ".join(
            str(row[3])
            for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", (1, 2, 3)[: sql.count("?")])
        )
    assert f"USING INDEX {index}" in plan or f"USING COVERING INDEX {index}" in plan, plan
