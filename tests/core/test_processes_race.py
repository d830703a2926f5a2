"""Two bot processes on one PostgreSQL database race for one member's last credits: the
advisory locks the core takes serialise them across processes, so exactly as many jobs are
accepted as the credits pay for, and the ledger balances."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from jobkit import GUILD, MOD, USER, FakeAPI, make_settings

from bot.core import Core
from storage import JobState
from storage.postgres import PostgresDatabase
from tests.backends import PgSchema, postgres_url

WORKER = Path(__file__).with_name("race_worker.py")
PRICE = 30  # jobkit's request(): 5 s at 720p
SUBMISSIONS = 25  # per process
AFFORDABLE = 10


@pytest.fixture
async def schema() -> AsyncIterator[PgSchema]:
    async with PgSchema.create(await postgres_url()) as created:
        yield created


async def start_worker(schema: PgSchema, worker: int) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        schema.server_url,
        schema.name,
        str(worker),
        str(SUBMISSIONS),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
    assert line.strip() == b"ready", line
    return process


async def finish(process: asyncio.subprocess.Process) -> dict[str, Any]:
    stdout, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0
    report: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
    return report


async def test_two_processes_racing_for_the_last_credits_accept_exactly_ten(
    schema: PgSchema,
) -> None:
    db = await PostgresDatabase.open(schema.server_url, server_settings=schema.server_settings)
    try:
        core = Core.build(db, FakeAPI(), make_settings())
        await core.moderation.set_allowance(GUILD, USER, AFFORDABLE * PRICE, MOD)
        await core.moderation.update_guild_settings(GUILD, MOD, max_concurrent=2 * SUBMISSIONS)

        workers = [await start_worker(schema, n) for n in (1, 2)]
        for process in workers:  # both are ready: let them go together
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            await process.stdin.drain()
        reports = await asyncio.gather(*(finish(p) for p in workers))

        assert [r["errors"] for r in reports] == [[], []]
        accepted = [job_id for r in reports for job_id in r["accepted"]]
        refused = [code for r in reports for code in r["refused"]]
        assert len(accepted) == AFFORDABLE, reports
        assert len(refused) == 2 * SUBMISSIONS - AFFORDABLE
        assert set(refused) == {"not_enough_credits"}

        # The ledger balances: one hold of the price per accepted job, nothing else.
        async with db.read() as store:
            entries = await store.ledger_entries(GUILD, USER)
            jobs = await store.member_jobs(GUILD, USER, limit=100)
        holds = [e for e in entries if e.kind == "hold"]
        assert sorted(e.job_id for e in holds) == sorted(accepted)
        assert all(e.amount == PRICE and e.pool == "period" for e in holds)
        assert sorted(j.id for j in jobs) == sorted(accepted)  # a refusal writes no job
        assert all(j.state is JobState.QUEUED for j in jobs)
        balance = await core.moderation.balance(GUILD, USER)
        assert (balance.available, balance.used, balance.held) == (0, 300, 300)
    finally:
        await db.close()
