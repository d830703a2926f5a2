"""Random faults: background noise at a rate, reproducible from a seed, after queued faults."""

from __future__ import annotations

import asyncio
import random

import aiohttp
import pytest

from bot.simulator import Fault, RandomFaults, Simulator
from tests.api.api_samples import IMAGE
from tests.simulator.simkit import Q3_PATH, RESULT, auth, call


async def statuses(sim: Simulator, count: int) -> list[int]:
    found = []
    for _ in range(count):
        status, _, _ = await call(sim, "GET", RESULT, headers=auth(sim), params={"task_id": "x"})
        found.append(status)
    return found


async def test_a_rate_of_one_plays_every_time_and_zero_never(sim: Simulator) -> None:
    rule = sim.fault_randomly("result", [Fault("result", "status", status=503)], rate=1.0)
    assert await statuses(sim, 3) == [503, 503, 503]
    assert [f.status for f in rule.played] == [503, 503, 503]
    rule.stop()
    assert await statuses(sim, 2) == [404, 404]  # the unknown task's own answer
    sim.fault_randomly("result", [Fault("result", "status", status=503)], rate=0.0)
    assert await statuses(sim, 2) == [404, 404]


async def test_the_same_seed_plays_the_same_faults(sim: Simulator) -> None:
    mix = [Fault("result", "status", status=503), Fault("result", "status", status=502)]
    first = sim.fault_randomly("result", mix, rate=0.5, seed=7)
    heard = await statuses(sim, 40)
    first.stop()
    second = sim.fault_randomly("result", mix, rate=0.5, seed=7)
    assert await statuses(sim, 40) == heard
    assert [f.status for f in second.played] == [f.status for f in first.played]
    assert 5 < len(first.played) < 35 and {502, 503} <= set(heard)


async def test_queued_faults_go_first_and_other_routes_are_untouched(sim: Simulator) -> None:
    sim.fault_randomly("submit", [Fault("submit", "status", status=503)], rate=1.0)
    sim.fail_next("result", status=500)
    assert await statuses(sim, 2) == [500, 404]
    status, _, _ = await call(sim, "POST", Q3_PATH, headers=auth(sim), json={"images": [IMAGE]})
    assert status == 503 and sim.tasks == {}


async def test_a_drawn_hang_creates_the_task_and_never_answers(sim: Simulator) -> None:
    sim.fault_randomly(
        "submit", [Fault("submit", "hang_after_accept", seconds=30)], rate=1.0, seed=1
    )
    timeout = aiohttp.ClientTimeout(total=0.5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        with pytest.raises(asyncio.TimeoutError):
            await session.post(sim.base_url + Q3_PATH, headers=auth(sim), json={"images": [IMAGE]})
    assert len(sim.tasks) == 1 and len(sim.submissions) == 1


def test_a_rule_is_checked_when_made() -> None:
    hang = Fault("result", "hang_after_accept")
    with pytest.raises(ValueError, match="only makes sense on submit"):
        RandomFaults("result", 0.1, (hang,), rng=random.Random(1))
    with pytest.raises(ValueError, match="rate"):
        RandomFaults("result", 1.5, (Fault("result", "status"),), rng=random.Random())
    with pytest.raises(ValueError, match="at least one"):
        RandomFaults("result", 0.5, (), rng=random.Random())
