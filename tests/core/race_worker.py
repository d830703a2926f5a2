"""One bot process racing another for a member's last credits (run by
`test_processes_race.py` with `sys.executable`; not a test itself).

    python tests/core/race_worker.py URL SCHEMA WORKER SUBMISSIONS

Builds `bot.core.Core` over the PostgreSQL schema with a fake video API, says "ready", waits
for "go" on stdin (so both processes start together), submits SUBMISSIONS jobs at once for
one member and prints what happened as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.core import Core
from bot.core.refusals import Refusal
from storage.postgres import PostgresDatabase
from tests.core.jobkit import FakeAPI, make_settings, request


async def main(url: str, schema: str, worker: int, submissions: int) -> None:
    db = await PostgresDatabase.open(
        url, server_settings={"search_path": schema}, max_connections=submissions
    )
    try:
        api = FakeAPI()
        api._next = worker * 100_000  # task ids unique across the processes
        api.delay = 0.01  # the API call overlaps the other submissions' checks
        core = Core.build(db, api, make_settings())
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # "go"
        outcomes = await asyncio.gather(
            *(core.submitting.submit(request()) for _ in range(submissions)),
            return_exceptions=True,
        )
    finally:
        await db.close()
    report = {
        "accepted": [o.id for o in outcomes if not isinstance(o, BaseException)],
        "refused": [o.code for o in outcomes if isinstance(o, Refusal)],
        "errors": [
            repr(o) for o in outcomes if isinstance(o, BaseException) and not isinstance(o, Refusal)
        ],
    }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    url, schema, worker, submissions = sys.argv[1:5]
    asyncio.run(main(url, schema, int(worker), int(submissions)))
