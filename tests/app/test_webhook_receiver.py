"""The webhook receiver over real HTTP: the simulator's webhooks reach it, each asks for one
read of its own job, and the read decides; forged and unknown ones change nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.api import Budget, VideoAPI
from bot.app import receiving_webhooks
from bot.core import Core
from bot.core.delivery import DeliveryOutcome
from bot.core.lifecycle import Lifecycle
from bot.core.poller import Poller
from bot.core.submitting import SubmitRequest
from bot.settings import ConfigurationError, Settings
from bot.simulator import Simulator, SimulatorConfig
from storage import Database, Job, JobState
from tests.core.jobkit import FakeAPI
from tests.shared import eventually, free_port

IMAGE = "https://cdn.example/attachments/1/2/cat.png"


class Delivered:
    """A delivery that records what it was asked to post."""

    def __init__(self) -> None:
        self.videos: list[int] = []

    async def post_card(self, job: Job, *, first: bool = False) -> DeliveryOutcome:
        return DeliveryOutcome.delivered(1)

    async def job_changed(self, job: Job) -> bool:
        return True

    def redraws_due(self) -> list[Job]:
        return []

    async def deliver(self, job: Job) -> DeliveryOutcome:
        self.videos.append(job.id)
        return DeliveryOutcome.delivered(2)


@dataclass
class Rig:
    sim: Simulator
    core: Core
    poller: Poller
    woken: asyncio.Event
    settings: Settings

    async def submit(self) -> Job:
        return await self.core.submitting.submit(
            SubmitRequest(
                guild_id=1,
                channel_id=5,
                user_id=10,
                model="vidu-q3-pro-i2v",
                params={"images": [IMAGE], "prompt": "a cat", "duration": 5},
            )
        )

    async def job(self, job_id: int) -> Job:
        job = await self.core.lifecycle.get_job(job_id)
        assert job is not None
        return job


def lifecycle(db: Database, settings: Settings) -> Lifecycle:
    return Core.build(db, FakeAPI(), settings).lifecycle


def nothing() -> None:
    pass


def settings_for(tmp_path: Path, port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "discord_token": "x",
        "novita_simulate": True,
        "webhook_public_url": f"http://127.0.0.1:{port}",
        "webhook_host": "127.0.0.1",
        "webhook_port": port,
        "poll_min_seconds": 3.0,
        "health_file": tmp_path / "health",
        "default_allowance": 1000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def rig(db: Database, tmp_path: Path) -> AsyncIterator[Rig]:
    settings = settings_for(tmp_path, free_port())
    async with (
        Simulator(SimulatorConfig(task_seconds=1.0)) as sim,
        VideoAPI(
            sim.base_url, sim.api_key, submits=Budget(600), reads=Budget(600), max_retries=0
        ) as api,
    ):
        core = Core.build(db, api, settings)
        poller = Poller(
            core.lifecycle, core.housekeeping, api, Delivered(), settings, leases=core.leases
        )
        woken = asyncio.Event()

        def wake() -> None:
            woken.set()
            poller.wake()

        async with receiving_webhooks(settings, core.lifecycle, wake):
            running = asyncio.create_task(poller.run_forever())
            try:
                yield Rig(sim, core, poller, woken, settings)
            finally:
                poller.stop()
                await running


async def wait_for(rig: Rig, job_id: int, state: JobState, limit: float = 5.0) -> Job:
    async def reached() -> Job | None:
        job = await rig.job(job_id)
        return job if job.state is state else None

    job = await eventually(reached, limit=limit)
    assert job is not None
    return job


def reads_of(rig: Rig, job: Job) -> list[Any]:
    return [r for r in rig.sim.result_reads if r.query.get("task_id") == job.task_id]


async def test_a_webhook_is_confirmed_by_one_read_long_before_the_schedule(rig: Rig) -> None:
    job = await rig.submit()
    assert job.task_id is not None and job.webhook_token is not None
    # The first scheduled read is 3 s away; the task ends after 1 s and says so by webhook.
    done = await wait_for(rig, job.id, JobState.SUCCEEDED, limit=2.5)
    [webhook] = [w for w in rig.sim.webhooks_sent if w.task_id == job.task_id]
    assert webhook.ok and webhook.status == 202
    assert webhook.url.endswith(f"/webhooks/vidu/{job.webhook_token}")
    assert len(reads_of(rig, job)) == 1  # the read the webhook asked for, and no other
    assert done.webhook_at is not None and done.finished_at is not None
    assert rig.woken.is_set()


async def test_a_forged_webhook_is_read_and_not_believed(rig: Rig) -> None:
    rig.sim.next_task_seconds = [30.0]
    job = await rig.submit()
    assert job.task_id is not None and job.webhook_token is not None
    url = f"{rig.settings.webhook_public_url}webhooks/vidu/{job.webhook_token}"
    [forged] = await rig.sim.send_forged_webhook(url, job.task_id)
    assert forged.status == 202  # the address is right: it asks for a read...

    async def read() -> list[Any]:
        return reads_of(rig, job)

    await eventually(read, limit=2)
    await asyncio.sleep(0.1)
    after = await rig.job(job.id)
    # ...which finds the task still running: no video, no charge, nothing delivered.
    assert after.state in (JobState.QUEUED, JobState.PROCESSING)
    assert after.result_url is None


async def test_unknown_addresses_and_other_tasks_change_nothing(rig: Rig) -> None:
    rig.sim.next_task_seconds = [30.0]
    job = await rig.submit()
    assert job.webhook_token is not None
    base = f"{rig.settings.webhook_public_url}webhooks/vidu"
    body = {"event_type": "ASYNC_TASK_RESULT", "payload": {"task": {"task_id": "other"}}}
    async with aiohttp.ClientSession() as session:
        for path, expected in (
            (f"{base}/{'A' * 32}", 404),  # no job has this token
            (f"{base}/../../etc", 404),
            (f"{base}/{job.webhook_token}", 409),  # another task's result at this address
        ):
            async with session.post(path, json=body) as response:
                assert response.status == expected, path
        async with session.get(f"{base}/{job.webhook_token}") as response:
            assert response.status == 405
    await asyncio.sleep(0.1)
    assert reads_of(rig, job) == []
    assert await rig.job(job.id) == job
    assert not rig.woken.is_set()


async def test_a_port_that_cannot_be_listened_on_is_one_clear_line(
    db: Database, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, free_port())
    with pytest.raises(ConfigurationError, match="WEBHOOK_HOST / WEBHOOK_PORT"):
        async with (
            receiving_webhooks(settings, lifecycle(db, settings), nothing),
            receiving_webhooks(settings, lifecycle(db, settings), nothing),
        ):
            pass


async def test_nothing_listens_without_a_public_url(db: Database, tmp_path: Path) -> None:
    port = free_port()
    settings = settings_for(tmp_path, port, webhook_public_url=None)
    async with (
        receiving_webhooks(settings, lifecycle(db, settings), nothing),
        aiohttp.ClientSession() as session,
    ):
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.post(f"http://127.0.0.1:{port}/webhooks/vidu/{'A' * 32}")
