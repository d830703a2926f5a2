"""The read schedule, driven in virtual time against the simulator's own model of what a
task says (`SimTask.reading`): reads per job and detection delay for every eta condition."""

from __future__ import annotations

import math
import random

import pytest

from bot.core.schedule import Learned, Memory, Plan, plan
from bot.simulator.tasks import EtaMode, SimTask, SimulatorConfig

CONDITIONS: list[EtaMode] = ["accurate", "too_long", "too_short", "stale", "progress_only", "none"]


def run(seconds: float, mode: EtaMode, learned: Learned | None) -> tuple[int, float, list[Plan]]:
    """Reads until the task is seen done: (reads, detection delay, plans)."""
    config = SimulatorConfig(eta_mode=mode)
    task = SimTask(task_id="t", model="m", body={}, created=0.0, seconds=seconds)
    # The first read, 3 s after submission (POLL_MIN_SECONDS), asks for the eta.
    memory, plans = Memory(), [Plan(read_at=3.0, likely=False, expected_end=None)]
    at, reads = plans[0].read_at, 0
    while True:
        reads += 1
        reading = task.reading(at, config)
        if reading.status.is_terminal:
            return reads, at - seconds, plans
        step = plan(
            at,
            memory,
            eta=reading.eta,
            progress=reading.progress_percent,
            learned=learned,
            ceiling=60.0,
        )
        plans.append(step)
        memory, at = step.memory, step.read_at
        assert reads < 500, "the schedule never caught the end"


def mix(count: int = 100, seed: int = 7) -> list[tuple[float, Learned]]:
    """Jobs of 20-300 s; what the bot learned of each one's kind is right to within ±15 %."""
    rng = random.Random(seed)
    jobs = []
    for _ in range(count):
        typical = rng.uniform(20, 300)
        jobs.append(
            (typical * rng.uniform(0.85, 1.15), Learned(0.8 * typical, typical, 1.2 * typical))
        )
    return jobs


@pytest.mark.parametrize("mode", CONDITIONS)
def test_every_condition_meets_its_targets_against_a_fixed_three_second_loop(mode: EtaMode) -> None:
    jobs = mix()
    results = [run(seconds, mode, learned) for seconds, learned in jobs]
    reads = sum(r for r, _, _ in results)
    loop_reads = sum(math.ceil(seconds / 3) for seconds, _ in jobs)
    delays = sorted(delay for _, delay, _ in results)
    if mode in ("accurate", "stale"):
        # One read for the eta, one just after the end it promises.
        assert reads <= loop_reads / 15
        assert delays[50] <= 1.5 and delays[95] <= 3.0
    else:
        assert reads <= loop_reads / 3
        for (seconds, _), (_, delay, _) in zip(jobs, results, strict=True):
            assert delay <= max(5.0, 0.15 * seconds)


def test_an_eta_that_contradicts_what_was_learned_is_not_believed() -> None:
    learned = Learned(80, 100, 120)
    step = plan(3.0, Memory(), eta=397, progress=0, learned=learned)  # four times too long
    assert step.source == "learned" and step.read_at == 80 and step.memory.eta_end is None
    step = plan(3.0, Memory(), eta=97, progress=0, learned=learned)  # in line
    assert step.source == "eta" and step.read_at == pytest.approx(100.25) and step.likely


def test_an_eta_that_misses_its_end_twice_is_broken_for_good() -> None:
    memory = plan(3.0, Memory(), eta=10, progress=None, learned=None).memory
    assert memory.eta_end == 13
    memory = plan(13.5, memory, eta=5, progress=None, learned=None).memory  # missed once
    assert memory.eta_misses == 1 and not memory.eta_broken and memory.eta_end == 18.5
    step = plan(19.0, memory, eta=5, progress=None, learned=None)  # missed again
    assert step.memory.eta_broken and step.source == "none"
    assert plan(25.0, step.memory, eta=1, progress=None, learned=None).source == "none"


def test_with_nothing_to_go_on_reads_grow_apart_with_the_running_time() -> None:
    gaps = [
        plan(e, Memory(), eta=None, progress=None, learned=None).read_at - e for e in (3, 60, 300)
    ]
    assert gaps == [pytest.approx(4.5), pytest.approx(8.1), pytest.approx(40.5)]
    # ...but never further than the ceiling (POLL_MAX_SECONDS).
    capped = plan(1000, Memory(), eta=None, progress=None, learned=None, ceiling=60)
    assert capped.read_at - 1000 == pytest.approx(60)


def test_memory_survives_a_trip_through_json() -> None:
    memory = Memory(eta_end=12.5, eta_misses=1, not_found=2)
    assert Memory.from_json(memory.to_json()) == memory
    assert Memory.from_json({"eta_end": 3.0, "unknown": 1}) == Memory(eta_end=3.0)
    assert Memory.from_json("garbage") == Memory()
