"""Racing submissions: the last credits go to exactly as many jobs as they pay for."""

from __future__ import annotations

import asyncio
import time

from jobkit import GUILD, MOD, USER, FakeAPI, request, words

from bot.core import Core
from bot.core.refusals import Refusal
from storage import Database, JobState


async def test_fifty_concurrent_submissions_with_credit_for_ten(
    core: Core, api: FakeAPI, db: Database
) -> None:
    await core.moderation.set_allowance(GUILD, USER, 300, MOD)  # 10 × 30
    await core.moderation.update_guild_settings(GUILD, MOD, max_concurrent=50)
    api.delay = 0.01  # the API call overlaps other coroutines' checks

    started = time.monotonic()
    outcomes = await asyncio.gather(
        *(core.submitting.submit(request()) for _ in range(50)), return_exceptions=True
    )
    elapsed = time.monotonic() - started

    jobs = [o for o in outcomes if not isinstance(o, BaseException)]
    refusals = [o for o in outcomes if isinstance(o, Refusal)]
    assert len(jobs) == 10 and len(refusals) == 40, outcomes
    assert all(job.state is JobState.QUEUED for job in jobs)
    assert {r.code for r in refusals} == {"not_enough_credits"}
    assert all("0 credits left" in words(r) and "30 credits" in words(r) for r in refusals)
    assert len(api.calls) == 10

    async with db.read() as store:
        entries = await store.ledger_entries(GUILD, USER)
    holds = [e for e in entries if e.kind == "hold"]
    assert len(holds) == 10 and sum(e.amount for e in holds) == 300
    balance = await core.moderation.balance(GUILD, USER)
    assert balance.available == 0 and balance.used == 300 and balance.held == 300
    assert elapsed < 10


async def test_racing_members_share_a_guild_cap_exactly(core: Core, api: FakeAPI) -> None:
    await core.moderation.update_guild_settings(GUILD, MOD, daily_cap=90)
    api.delay = 0.005
    outcomes = await asyncio.gather(
        *(core.submitting.submit(request(user=1000 + n)) for n in range(12)), return_exceptions=True
    )
    accepted = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, Refusal)]
    assert len(accepted) == 3 and len(refused) == 9
    assert {r.code for r in refused} == {"guild_cap"}


async def test_racing_submissions_respect_the_concurrency_cap(core: Core, api: FakeAPI) -> None:
    api.delay = 0.005
    outcomes = await asyncio.gather(
        *(core.submitting.submit(request(duration=1)) for _ in range(8)), return_exceptions=True
    )
    accepted = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(accepted) == 2
    assert {o.code for o in outcomes if isinstance(o, Refusal)} == {"too_many_jobs"}
