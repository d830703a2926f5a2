"""Benchmark: the job pipeline without Discord, against the simulator on loopback.

    python tests/bench/bench_jobs.py [--jobs 400] [--members 40] [--concurrency 20]
                                     [--postgres postgresql://postgres@127.0.0.1:5432/test]

Prints numbers; asserts nothing about speed (numbers depend on the machine). It measures:
1. submit: check + hold + job row in one transaction, then the HTTP submit;
2. the race: 50 submissions by one member with credit for 10 (how long it takes to refuse 40);
3. polling: reading every task's result and settling it (commit rows), as the poller does.

On a SQLite file by default; `--postgres URL` runs on that server instead, in a schema of
its own that is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.api import VideoAPI
from bot.core import Core
from bot.core.refusals import Refusal
from bot.core.submitting import SubmitRequest
from bot.settings import Settings
from bot.simulator import Simulator, SimulatorConfig
from storage import Database, InputRef, open_database

IMAGE = "https://cdn.example/attachments/1/2/cat.png"


def request(user: int) -> SubmitRequest:
    return SubmitRequest(
        guild_id=1,
        channel_id=2,
        user_id=user,
        model="vidu-q3-pro-i2v",
        params={"images": [IMAGE], "prompt": "bench", "duration": 5},
        inputs=[InputRef(kind="image", url=IMAGE)],
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@contextlib.asynccontextmanager
async def bench_database(folder: Path, postgres: str | None) -> AsyncIterator[Database]:
    if postgres is None:
        db = await open_database(None, folder / "bench.sqlite3")
        try:
            yield db
        finally:
            await db.close()
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        db = await open_database(
            postgres, folder / "unused", server_settings={"search_path": schema}
        )
        try:
            yield db
        finally:
            await db.close()
            await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await admin.close()


async def main(jobs: int, members: int, concurrency: int, postgres: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            Simulator(SimulatorConfig(task_seconds=0)) as sim,
            bench_database(Path(tmp), postgres) as db,
        ):
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                discord_token="x",
                novita_base_url=sim.base_url,
                novita_api_key=sim.api_key,
                default_allowance=10_000,
                default_max_concurrent_jobs=50,
                api_submits_per_minute=6000,
                api_reads_per_minute=6000,
                poll_min_seconds=0.01,
            )
            async with VideoAPI.from_settings(
                settings, base_url=sim.base_url, api_key=sim.api_key
            ) as api:
                core = Core.build(db, api, settings)

                # 1. submit throughput and latency
                slots = asyncio.Semaphore(concurrency)
                latencies: list[float] = []

                async def submit(n: int) -> None:
                    async with slots:
                        start = time.perf_counter()
                        await core.submitting.submit(request(100 + n % members))
                        latencies.append(time.perf_counter() - start)

                start = time.perf_counter()
                await asyncio.gather(*(submit(n) for n in range(jobs)))
                elapsed = time.perf_counter() - start
                print(f"submit: {jobs} jobs, {members} members, concurrency {concurrency}")
                print(
                    f"  {jobs / elapsed:8.1f} jobs/s   p50 {statistics.median(latencies) * 1000:6.1f} ms"
                    f"   p95 {percentile(latencies, 0.95) * 1000:6.1f} ms"
                )

                # 2. the race for the last credits
                await core.moderation.set_allowance(1, 9, 300, actor_id=1)  # ten 30-credit videos

                async def racer() -> bool:
                    try:
                        await core.submitting.submit(request(9))
                        return True
                    except Refusal:
                        return False

                start = time.perf_counter()
                won = await asyncio.gather(*(racer() for _ in range(50)))
                elapsed = time.perf_counter() - start
                balance = await core.moderation.balance(1, 9)
                print(
                    f"race: 50 submissions for 10 videos' credit: {sum(won)} accepted, "
                    f"{50 - sum(won)} refused, {balance.available} left, {elapsed * 1000:.0f} ms"
                )

                # 3. result reads and settlement
                await asyncio.sleep(0.05)  # past every job's first poll time
                due = await core.leases.reads_due(limit=100_000)
                start = time.perf_counter()

                async def settle(job_id: int, task_id: str) -> None:
                    async with slots:
                        await core.lifecycle.apply_result(job_id, await api.task_result(task_id))

                await asyncio.gather(*(settle(j.id, j.task_id or "") for j in due))
                elapsed = time.perf_counter() - start
                print(
                    f"poll: {len(due)} results read and settled: {len(due) / elapsed:8.1f} jobs/s"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--members", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--postgres", metavar="URL", help="run on this PostgreSQL server")
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.members, args.concurrency, args.postgres))
