"""member_totals, kept by the database beside the ledger, always equals the ledger itself:
after any mix of rows, and after migrating a database that already had a ledger."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from storage import Database, bundled_migrations
from storage.sql import to_db
from tests.backends import Backend

MEMBERS = ((1, 10), (1, 11), (2, 10))


def recomputed(rows: list[Any]) -> dict[tuple[int, int], dict[str, int]]:
    """The totals from the ledger rows alone, in Python (oldest first)."""
    totals: dict[tuple[int, int], dict[str, int]] = {}
    for row in rows:
        if row.user_id is None:
            continue
        t = totals.setdefault(
            (row.guild_id, row.user_id),
            dict.fromkeys(
                (
                    "unsettled",
                    "bonus_granted",
                    "bonus_unsettled",
                    "bonus_committed",
                    "period_unsettled",
                    "period_committed",
                    "period_excused",
                ),
                0,
            ),
        )
        sign = {"hold": 1, "commit": -1, "release": -1}.get(row.kind)
        if sign is not None:
            t["unsettled"] += sign * row.amount
            t[f"{row.pool}_unsettled"] += sign * row.amount
            if row.kind == "commit":
                t[f"{row.pool}_committed"] += row.amount
        elif row.kind == "grant":
            t["bonus_granted"] += row.amount
        elif row.kind == "reset":
            t["period_excused"] = t["period_committed"]
    return totals


async def stored_totals(db: Database) -> dict[tuple[int, int], dict[str, int]]:
    async with db.read() as store:
        rows = await store._all("SELECT * FROM member_totals")
    return {
        (int(r["guild_id"]), int(r["user_id"])): {
            k: int(v) for k, v in r.items() if k not in ("guild_id", "user_id")
        }
        for r in rows
    }


async def random_history(db: Database, t0: datetime, seed: int, steps: int = 300) -> None:
    rng = random.Random(seed)
    open_holds: list[tuple[int, int, int, str, int]] = []  # job, guild, user, pool, amount
    async with db.transaction() as store:
        for step in range(steps):
            at = t0 + timedelta(minutes=step)
            guild, user = rng.choice(MEMBERS)
            roll = rng.random()
            if roll < 0.4:
                job_id = await store._insert(
                    "INSERT INTO jobs (guild_id, channel_id, user_id, model, params, price,"
                    " state, created_at, updated_at)"
                    " VALUES (?, 5, ?, 'm', '{}', 30, 'SUBMITTING', ?, ?) RETURNING id",
                    (guild, user, to_db(at), to_db(at)),
                )
                for pool in rng.sample(["period", "bonus"], rng.randint(1, 2)):
                    amount = rng.randint(0, 40)
                    await store.add_ledger(
                        guild_id=guild,
                        user_id=user,
                        job_id=job_id,
                        kind="hold",
                        pool=pool,
                        amount=amount,
                        actor="system",
                        at=at,
                    )
                    open_holds.append((job_id, guild, user, pool, amount))
            elif roll < 0.7 and open_holds:
                job_id, guild, user, pool, amount = open_holds.pop(rng.randrange(len(open_holds)))
                await store.add_ledger(
                    guild_id=guild,
                    user_id=user,
                    job_id=job_id,
                    kind=rng.choice(["commit", "release"]),
                    pool=pool,
                    amount=amount,
                    actor="system",
                    at=at,
                )
            elif roll < 0.85:
                await store.add_ledger(
                    guild_id=guild,
                    user_id=user,
                    kind="grant",
                    amount=rng.randint(-20, 60),
                    actor="9",
                    at=at,
                )
            elif roll < 0.95:
                await store.add_ledger(
                    guild_id=guild,
                    user_id=user,
                    kind="reset",
                    amount=rng.randint(0, 50),
                    actor="9",
                    at=at,
                )
            else:
                await store.add_ledger(
                    guild_id=guild, user_id=None, kind="default", amount=100, actor="9", at=at
                )


async def test_the_totals_always_equal_the_ledger(db: Database, t0: datetime) -> None:
    for seed in range(3):
        await random_history(db, t0, seed)
        async with db.read() as store:
            rows = await store.ledger_entries()
        assert await stored_totals(db) == recomputed(rows), seed


async def test_a_database_migrated_with_a_ledger_gets_the_same_totals(
    backend: Backend, t0: datetime
) -> None:
    dialect = "postgres" if backend.name == "postgres" else "sqlite"
    before_totals = bundled_migrations(dialect)[:2]  # the schema before member_totals
    db = await backend.open(migrations=before_totals)
    try:
        await random_history(db, t0, seed=7)
    finally:
        await db.close()
    db = await backend.open()  # migration 003 fills member_totals from the ledger
    try:
        async with db.read() as store:
            rows = await store.ledger_entries()
        assert await stored_totals(db) == recomputed(rows)
        await random_history(db, t0 + timedelta(days=30), seed=8)  # and the trigger goes on
        async with db.read() as store:
            rows = await store.ledger_entries()
        assert await stored_totals(db) == recomputed(rows)
    finally:
        await db.close()
