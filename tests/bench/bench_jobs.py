"""Benchmark: the job pipeline without Discord, against the simulator on loopback.

    python tests/bench/bench_jobs.py [--jobs 400] [--members 40] [--concurrency 20]

Prints numbers; asserts nothing about speed (numbers depend on the machine). It measures:
1. submit: check + hold + job row in one SQLite transaction, then the HTTP submit;
2. the race: 50 submissions by one member with credit for 10 (how long it takes to refuse 40);
3. polling: reading every task's result and settling it (commit rows), as the poller does.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.api import VideoAPI
from bot.core import Core
from bot.core.refusals import Refusal
from bot.core.submitting import SubmitRequest
from bot.settings import Settings
from bot.simulator import Simulator, SimulatorConfig
from storage import Database, InputRef

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


async def main(jobs: int, members: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with Simulator(SimulatorConfig(task_seconds=0)) as sim:
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
            db = await Database.open(Path(tmp) / "bench.sqlite3")
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
                due = await core.lifecycle.due_jobs(limit=100_000)
                start = time.perf_counter()

                async def settle(job_id: int, task_id: str) -> None:
                    async with slots:
                        await core.lifecycle.apply_result(job_id, await api.task_result(task_id))

                await asyncio.gather(*(settle(j.id, j.task_id or "") for j in due))
                elapsed = time.perf_counter() - start
                print(
                    f"poll: {len(due)} results read and settled: {len(due) / elapsed:8.1f} jobs/s"
                )
            await db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--members", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.members, args.concurrency))
