"""Per-task durations and what the service says about the time left (`eta_mode`)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bot.api.models import TaskStatus
from bot.simulator import EtaMode, SimTask, Simulator, SimulatorConfig
from tests.simulator.simkit import read, submit

QUEUED, PROCESSING = TaskStatus.QUEUED, TaskStatus.PROCESSING
SUCCEED = TaskStatus.SUCCEED.value

# --- durations -------------------------------------------------------------------------


async def test_next_task_seconds_are_used_in_order_then_the_default(sim: Simulator) -> None:
    sim.config.task_seconds = 7.0
    sim.next_task_seconds = [0.2, 3.5]
    ids = [await submit(sim) for _ in range(3)]
    assert [sim.tasks[task_id].seconds for task_id in ids] == [0.2, 3.5, 7.0]
    assert sim.next_task_seconds == []
    sim.next_task_seconds.append(1.25)  # the list itself is the knob
    assert sim.tasks[await submit(sim)].seconds == 1.25


async def test_duration_of_sees_the_body_and_next_task_seconds_come_first(
    sim: Simulator,
) -> None:
    bodies: list[dict[str, Any]] = []

    def duration_of(body: dict[str, Any]) -> float:
        bodies.append(body)
        return float(body["duration"]) / 10

    sim.config.duration_of = duration_of
    sim.next_task_seconds = [9.0]
    first = await submit(sim, duration=5)
    second = await submit(sim, duration=8, webhook="http://127.0.0.1:9/hook")
    assert sim.tasks[first].seconds == 9.0
    assert sim.tasks[second].seconds == 0.8
    assert len(bodies) == 1 and "extra" not in bodies[0] and bodies[0]["duration"] == 8


async def test_each_task_ends_after_its_own_duration(sim: Simulator) -> None:
    sim.next_task_seconds = [0.3, 0.9]
    start = time.monotonic()
    short, long = await submit(sim), await submit(sim)
    ended: dict[str, float] = {}
    while len(ended) < 2 and time.monotonic() - start < 2.0:
        for task_id in (short, long):
            if task_id not in ended and (await read(sim, task_id))["status"] == SUCCEED:
                ended[task_id] = time.monotonic() - start
        await asyncio.sleep(0.02)
    assert 0.3 <= ended[short] < 0.5
    assert 0.9 <= ended[long] < 1.1


# --- eta modes, by the numbers (a synthetic clock) ------------------------------------


def task_of(seconds: float, **fields: Any) -> SimTask:
    return SimTask(task_id="t", model="m", body={}, created=0.0, seconds=seconds, **fields)


@pytest.mark.parametrize(
    ("mode", "first", "midway"),
    [
        # (status, eta, progress) at 1 s (QUEUED) and at 50 s (PROCESSING) of a 100 s task
        ("accurate", (QUEUED, 99, 0), (PROCESSING, 50, 50)),
        ("too_long", (QUEUED, 399, 0), (PROCESSING, 350, 12)),
        ("too_short", (QUEUED, 24, 0), (PROCESSING, 0, 99)),
        ("stale", (QUEUED, 99, 0), (PROCESSING, 99, 0)),
        ("progress_only", (QUEUED, None, 0), (PROCESSING, None, 50)),
        ("none", (QUEUED, None, None), (PROCESSING, None, None)),
    ],
)
def test_eta_modes_by_the_numbers(
    mode: EtaMode,
    first: tuple[TaskStatus, int | None, int | None],
    midway: tuple[TaskStatus, int | None, int | None],
) -> None:
    config = SimulatorConfig(eta_mode=mode, queued_fraction=0.2)
    task = task_of(100.0)

    def at(now: float) -> tuple[TaskStatus, int | None, int | None]:
        reading = task.reading(now, config)
        return reading.status, reading.eta, reading.progress_percent

    assert at(1.0) == first
    assert at(50.0) == midway
    if mode == "too_short":
        assert at(99.9) == (PROCESSING, 0, 99)  # still running, still "0 s left"
    if mode == "too_long":
        assert at(99.9)[1:] == (301, 24)
    status, eta, progress = at(100.0)
    assert status is TaskStatus.SUCCEED
    assert eta == (None if first[1] is None else 0)
    assert progress == (None if first[2] is None else 100)
    task.fail_reason = "no"
    assert at(150.0)[0] is TaskStatus.FAILED


def test_a_task_may_have_its_own_eta_mode_and_progress_fields_off_means_none() -> None:
    config = SimulatorConfig(eta_mode="accurate")
    own = task_of(100.0, eta_mode="too_long")
    assert own.reading(50.0, config).eta == 350
    config.progress_fields = False
    reading = own.reading(50.0, config)
    assert (reading.eta, reading.progress_percent) == (None, None)


# --- eta modes over HTTP, in real time ------------------------------------------------

T = 1.5  # seconds; the second read comes 0.8 s in


@pytest.mark.parametrize(
    ("mode", "first_eta", "later_eta", "later_progress"),
    [
        ("accurate", 2, 1, (53, 66)),
        ("too_long", 6, 6, (13, 16)),
        ("too_short", 1, 0, (99, 99)),
        ("stale", 2, 2, (0, 0)),
        ("progress_only", None, None, (53, 66)),
        ("none", None, None, None),
    ],
)
async def test_eta_modes_first_reads(
    sim: Simulator,
    mode: EtaMode,
    first_eta: int | None,
    later_eta: int | None,
    later_progress: tuple[int, int] | None,
) -> None:
    sim.config.eta_mode = mode
    sim.config.queued_fraction = 0.2
    sim.next_task_seconds = [T]
    start = time.monotonic()
    task_id = await submit(sim)
    first = await read(sim, task_id)
    assert first["status"] == QUEUED.value  # the first 0.3 s
    assert first.get("eta") == first_eta
    assert first.get("progress_percent") == (None if mode == "none" else 0)
    await asyncio.sleep(0.8 - (time.monotonic() - start))
    later = await read(sim, task_id)
    assert later["status"] == PROCESSING.value  # even when "too_short" says 0 s are left
    assert later.get("eta") == later_eta
    if later_progress is None:
        assert "progress_percent" not in later
    else:
        low, high = later_progress
        assert low <= later["progress_percent"] <= high
    sim.finish_task(task_id)
    done = await read(sim, task_id)
    assert done["status"] == SUCCEED
    assert done.get("eta") == (None if first_eta is None else 0)
    assert done.get("progress_percent") == (None if mode == "none" else 100)


async def test_progress_fields_off_sends_neither_whatever_the_mode(sim: Simulator) -> None:
    sim.config.progress_fields = False
    sim.config.eta_mode = "too_long"
    info = await read(sim, await submit(sim))
    assert "eta" not in info and "progress_percent" not in info
