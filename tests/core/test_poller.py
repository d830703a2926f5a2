"""The poller's own rules, with stand-ins for the service, the API and the chat platform."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from unittest.mock import AsyncMock

from bot import metrics
from bot.api.budget import Budget
from bot.api.models import TaskResult
from bot.core import poller as poller_module
from bot.core.delivery import DeliveryOutcome
from bot.core.housekeeping import Recovery
from bot.core.poller import (
    DELIVERY_BACKOFF_CAP_SECONDS,
    MAX_DELIVERY_ATTEMPTS,
    Poller,
    delivery_delay,
)
from bot.settings import Settings
from storage.models import Job, JobState

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def job(job_id: int, state: JobState = JobState.PROCESSING) -> Job:
    return Job(
        id=job_id,
        guild_id=1,
        channel_id=2,
        user_id=3,
        model="vidu-q3-pro-i2v",
        params={},
        price=10,
        state=state,
        task_id=f"task-{job_id}",
        next_poll_at=NOW,
        created_at=NOW,
        updated_at=NOW,
    )


def progress_result(task_id: str) -> TaskResult:
    return TaskResult.model_validate(
        {"task": {"task_id": task_id, "status": "TASK_STATUS_PROCESSING", "progress_percent": 50}}
    )


class StubService:
    """Hands out fixed jobs; `broken` names the phases whose query raises."""

    def __init__(self, due: list[Job], deliveries: list[Job], broken: set[str]) -> None:
        self.due = due
        self.deliveries = deliveries
        self.broken = broken
        self.applied: list[int] = []
        self.polled = asyncio.Event()
        self.given_up: list[tuple[int, str]] = []
        self.retries: list[tuple[int, float]] = []
        self.recovered_at: list[int] = []  # the read rate each start spread the backlog at

    async def recover(self, reads_per_minute: int) -> Recovery:
        self.recovered_at.append(reads_per_minute)
        return Recovery(lost=[], spread=0)

    def _maybe_fail(self, name: str) -> None:
        if name in self.broken:
            raise RuntimeError(f"{name} is broken")

    async def expire_overdue(self) -> list[Job]:
        self._maybe_fail("expire_overdue")
        return []

    async def reads_due(self, limit: int = 50) -> list[Job]:
        self._maybe_fail("reads_due")
        due, self.due = self.due, []
        return due

    async def deliveries_due(self) -> list[Job]:
        self._maybe_fail("deliveries_due")
        deliveries, self.deliveries = self.deliveries, []
        return deliveries

    async def apply_result(self, job_id: int, result: TaskResult, learned: Any = None) -> Job:
        self.applied.append(job_id)
        self.polled.set()
        return job(job_id)

    async def mark_delivered(self, job_id: int, message_id: int) -> Job:
        return job(job_id, JobState.DELIVERED)

    async def mark_undeliverable(self, job_id: int, reason: str) -> Job:
        self.given_up.append((job_id, reason))
        return job(job_id, JobState.UNDELIVERABLE)

    async def cards_to_post(
        self, *, older_than: float = 0.0, or_before: datetime | None = None, limit: int = 50
    ) -> list[Job]:
        self._maybe_fail("cards_to_post")
        return []

    async def cards_to_show(
        self, *, older_than: float, or_before: datetime | None = None, limit: int = 50
    ) -> list[Job]:
        self._maybe_fail("cards_to_show")
        return []

    async def keep_alive(self, busy: Any) -> int | None:
        self._maybe_fail("keep_alive")
        return None

    async def stop(self) -> None:
        return None

    async def next_read_in(self) -> float | None:
        return None

    async def retry_delivery_later(
        self, job_id: int, seconds: float, *, maybe_landed: bool = False
    ) -> Job:
        self.retries.append((job_id, seconds))
        return job(job_id, JobState.SUCCEEDED)


class StubAPI:
    async def task_result(self, task_id: str) -> TaskResult:
        return progress_result(task_id)


class StubDelivery:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.delivering = asyncio.Event()
        self.outcome = DeliveryOutcome.delivered(99)
        self.attempts = 0

    async def job_changed(self, job: Job) -> None:
        return None

    def redraws_due(self) -> list[Job]:
        return []

    async def deliver(self, job: Job) -> DeliveryOutcome:
        self.attempts += 1
        self.delivering.set()
        await self.release.wait()  # a long upload
        return self.outcome


def make_poller(
    tmp_path: Path,
    *,
    due: Sequence[Job] = (),
    deliveries: Sequence[Job] = (),
    broken: set[str] | None = None,
    concurrency: int = 4,
) -> tuple[Poller, StubService, StubDelivery]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        discord_token="x",
        novita_simulate=True,
        health_file=tmp_path / "health",
        poll_min_seconds=0.01,
        poll_concurrency=concurrency,
    )
    service = StubService(list(due), list(deliveries), broken or set())
    delivery = StubDelivery()
    poller = Poller(
        cast(Any, service),
        cast(Any, service),
        cast(Any, StubAPI()),
        delivery,
        settings,
        leases=cast(Any, service),
    )
    return poller, service, delivery


async def test_a_start_spreads_the_backlog_at_the_rate_the_read_budget_serves(
    tmp_path: Path,
) -> None:
    poller, service, _ = make_poller(tmp_path)  # API_READS_PER_MINUTE: 60, the default
    await poller.recover()
    poller.reads = Budget(30)  # API_REQUESTS_PER_MINUTE left the reads 30 of them
    await poller.recover()
    assert service.recovered_at == [60, 30]


async def run_a_little(poller: Poller, until: asyncio.Event) -> None:
    task = asyncio.create_task(poller.run_forever())
    try:
        await asyncio.wait_for(until.wait(), 5)
        await asyncio.sleep(0.05)  # a few more ticks
    finally:
        poller.stop()
        await task


async def test_a_failing_phase_does_not_stop_the_others_nor_look_healthy(
    tmp_path: Path,
) -> None:
    poller, service, _ = make_poller(tmp_path, due=[job(1)], broken={"expire_overdue"})
    await run_a_little(poller, service.polled)
    assert service.applied == [1]  # due jobs were still polled
    assert not (tmp_path / "health").exists()  # but the poller does not say it is well


async def test_a_clean_tick_refreshes_the_health_file(tmp_path: Path) -> None:
    poller, service, _ = make_poller(tmp_path, due=[job(1)])
    await run_a_little(poller, service.polled)
    assert (tmp_path / "health").read_text().strip().isdigit()


async def test_tick_says_whether_every_phase_worked(tmp_path: Path) -> None:
    poller, service, _ = make_poller(tmp_path, due=[job(1)], broken={"deliveries_due"})
    assert await poller.tick() is False
    await poller.drain()
    assert service.applied == [1]
    service.broken.clear()
    assert await poller.tick() is True


async def test_long_deliveries_do_not_take_the_polling_slots(tmp_path: Path) -> None:
    uploading = job(1, JobState.SUCCEEDED)
    poller, service, delivery = make_poller(tmp_path, deliveries=[uploading], concurrency=1)
    await poller.tick()
    await asyncio.wait_for(delivery.delivering.wait(), 5)
    # The one delivery slot is busy with a long upload; a poll still gets through.
    service.due = [job(2)]
    await poller.tick()
    await asyncio.wait_for(service.polled.wait(), 5)
    assert service.applied == [2]
    delivery.release.set()
    await poller.drain()


def test_delivery_delays_double_up_to_the_cap() -> None:
    delays = [delivery_delay(n, 30.0) for n in range(8)]
    assert delays[:5] == [30.0, 60.0, 120.0, 240.0, 480.0]
    assert delays[5:] == [DELIVERY_BACKOFF_CAP_SECONDS] * 3
    assert delivery_delay(0, 30.0, retry_after=90.0) == 90.0  # a rate limit's wait wins
    assert delivery_delay(10_000, 30.0) == DELIVERY_BACKOFF_CAP_SECONDS


def test_delivery_is_given_up_only_after_about_a_day() -> None:
    # The waits between MAX_DELIVERY_ATTEMPTS attempts, at the default retry setting.
    settings = Settings(_env_file=None, discord_token="x", novita_simulate=True)  # type: ignore[call-arg]
    base = settings.delivery_retry_seconds
    waited = sum(delivery_delay(n, base) for n in range(MAX_DELIVERY_ATTEMPTS - 1))
    assert 20 * 3600 <= waited <= 30 * 3600
    # The first retries come within seconds (a single 503 costs about one)...
    assert [delivery_delay(n, base) for n in range(3)] == [1.0, 2.0, 4.0]
    # ...and a ten-minute outage still uses only a handful of attempts.
    spent, attempts = 0.0, 0
    while spent < 600:
        spent += delivery_delay(attempts, base)
        attempts += 1
    assert attempts <= 10 < MAX_DELIVERY_ATTEMPTS


async def test_the_last_allowed_delivery_attempt_is_made_then_given_up(tmp_path: Path) -> None:
    poller, service, delivery = make_poller(tmp_path)
    delivery.release.set()
    delivery.outcome = DeliveryOutcome.retry("Discord 503")

    await poller.deliver_job(job(1, JobState.SUCCEEDED).model_copy(update={"attempts": 3}))
    assert delivery.attempts == 1 and service.given_up == []
    # The setting's delay doubled for each earlier attempt.
    assert service.retries == [(1, delivery_delay(3, poller.settings.delivery_retry_seconds))]

    last = job(2, JobState.SUCCEEDED).model_copy(update={"attempts": MAX_DELIVERY_ATTEMPTS - 1})
    await poller.deliver_job(last)
    assert delivery.attempts == 2  # tried, not given up beforehand
    assert service.given_up == [(2, poller_module.GIVE_UP_REASON)]
    assert service.retries == [(1, delivery_delay(3, poller.settings.delivery_retry_seconds))]


async def test_delivery_outcomes_and_the_wait_to_post_are_counted(tmp_path: Path) -> None:
    poller, service, delivery = make_poller(tmp_path)
    delivery.release.set()
    made = job(1, JobState.SUCCEEDED).model_copy(update={"finished_at": NOW})
    posted = job(1, JobState.DELIVERED).model_copy(
        update={"finished_at": NOW + timedelta(seconds=2.5)}
    )
    service.mark_delivered = AsyncMock(return_value=posted)  # type: ignore[method-assign]
    with metrics.installed(metrics.Metrics("test")) as counted:
        await poller.deliver_job(made)
        delivery.outcome = DeliveryOutcome.retry("Discord 503")
        await poller.deliver_job(job(2, JobState.SUCCEEDED))
        delivery.outcome = DeliveryOutcome.undeliverable("channel gone")
        await poller.deliver_job(job(3, JobState.SUCCEEDED))
    assert counted.value("vidu_deliveries_total", outcome="delivered") == 1
    assert counted.value("vidu_deliveries_total", outcome="retry") == 1
    assert counted.value("vidu_deliveries_total", outcome="undeliverable") == 1
    assert counted.value("vidu_poll_to_post_seconds_count") == 1
    assert counted.value("vidu_poll_to_post_seconds_sum") == 2.5


async def test_the_poller_wakes_for_the_next_planned_read(tmp_path: Path) -> None:
    poller, service, _ = make_poller(tmp_path)
    poller._idle = idle = 1.0  # the real bot's tick (these settings poll far more often)
    assert await poller._until_next_read() == idle  # nothing planned: the idle tick
    answers: list[float | None] = [0.3, 30.0, 0.0001]
    service.next_read_in = AsyncMock(side_effect=answers)  # type: ignore[method-assign]
    assert await poller._until_next_read() == 0.3  # a read planned sooner than the tick
    assert await poller._until_next_read() == idle  # never longer than the tick
    assert await poller._until_next_read() == poller_module.MIN_IDLE_SECONDS  # never spins
    service.next_read_in = AsyncMock(side_effect=RuntimeError("db gone"))  # type: ignore[method-assign]
    assert await poller._until_next_read() == idle
