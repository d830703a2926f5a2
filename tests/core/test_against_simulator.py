"""The job service with the real `VideoAPI` against the loopback simulator of the service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from jobkit import GUILD, MOD, USER, make_settings, request

from bot.api import Budget, VideoAPI
from bot.core import Core
from bot.core.refusals import Refusal
from bot.simulator import Simulator, SimulatorConfig
from storage import Database, Job, JobState

TASK_SECONDS = 0.3


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(SimulatorConfig(task_seconds=TASK_SECONDS)) as simulator:
        yield simulator


@pytest.fixture
async def real_api(sim: Simulator) -> AsyncIterator[VideoAPI]:
    async with VideoAPI(
        sim.base_url,
        sim.api_key,
        submits=Budget(6000),
        reads=Budget(6000),
        submit_timeout=1.0,
        request_timeout=2.0,
        max_retries=0,
        retry_base_delay=0.01,
    ) as client:
        yield client


@pytest.fixture
def live(db: Database, real_api: VideoAPI) -> Core:
    return Core.build(db, real_api, make_settings(poll_min_seconds=0.05, poll_max_seconds=0.2))


async def poll_to_end(core: Core, api: VideoAPI, job: Job, limit: float = 10) -> Job:
    """What the poller does for one job, without waiting for its schedule."""
    async with asyncio.timeout(limit):
        while job.state in (JobState.QUEUED, JobState.PROCESSING):
            assert job.task_id is not None
            job = await core.lifecycle.apply_result(job.id, await api.task_result(job.task_id))
            await asyncio.sleep(0.05)
    return job


async def test_a_video_is_made_charged_and_delivered(
    live: Core, real_api: VideoAPI, sim: Simulator
) -> None:
    job = await live.submitting.submit(request())
    assert job.state is JobState.QUEUED and job.task_id in sim.tasks
    [sent] = sim.submissions
    assert sent.json == job.params
    assert sent.headers.get("Authorization") == f"Bearer {sim.api_key}"
    done = await poll_to_end(live, real_api, job)
    assert done.state is JobState.SUCCEEDED
    assert done.result_url and done.result_url.startswith(sim.base_url)
    assert done.result_expires_at is not None
    balance = await live.moderation.balance(GUILD, USER)
    assert (balance.used, balance.held) == (30, 0)
    delivered = await live.lifecycle.mark_delivered(done.id, 42)
    assert delivered.state is JobState.DELIVERED


async def test_a_prompt_the_service_refuses_is_rejected_and_released(
    live: Core, sim: Simulator
) -> None:
    job = await live.submitting.submit(request(prompt="something illegal"))
    assert job.state is JobState.REJECTED
    assert job.failure_reason is not None and "content policy" in job.failure_reason
    assert sim.tasks == {}
    assert (await live.moderation.balance(GUILD, USER)).available == 100


async def test_a_task_that_fails_is_released_with_the_reason(
    live: Core, real_api: VideoAPI
) -> None:
    job = await live.submitting.submit(request(prompt="a forbidden scene"))
    ended = await poll_to_end(live, real_api, job)
    assert ended.state is JobState.FAILED
    assert ended.failure_reason is not None and "moderation" in ended.failure_reason
    assert (await live.moderation.balance(GUILD, USER)).held == 0


async def test_a_hung_submission_is_never_resent_and_recovery_releases_it(
    live: Core, sim: Simulator
) -> None:
    sim.hang_next_submission()
    job = await live.submitting.submit(request())
    assert job.state is JobState.SUBMITTING and job.task_id is None
    assert len(sim.tasks) == 1  # the service did create it: this is why it is never resent
    assert job.failure_reason is not None
    assert (await live.moderation.balance(GUILD, USER)).held == 30
    await live.housekeeping.recover(60)
    lost = await live.lifecycle.get_job(job.id)
    assert lost is not None and lost.state is JobState.LOST
    assert len(sim.submissions) == 1
    assert (await live.moderation.balance(GUILD, USER)).available == 100


async def test_a_server_error_on_submit_is_an_unknown_outcome(live: Core, sim: Simulator) -> None:
    sim.fail_next("submit", status=503, reason="SERVICE_NOT_AVAILABLE")
    job = await live.submitting.submit(request())
    assert job.state is JobState.SUBMITTING
    assert len(sim.submissions) == 1


async def test_a_rate_limited_submission_is_rejected_not_held(live: Core, sim: Simulator) -> None:
    sim.rate_limit_next("submit", retry_after=1)
    job = await live.submitting.submit(request())
    assert job.state is JobState.REJECTED
    assert job.failure_reason is not None and "busy" in job.failure_reason
    assert (await live.moderation.balance(GUILD, USER)).held == 0


async def test_a_forgotten_task_fails_the_job(
    live: Core, real_api: VideoAPI, sim: Simulator
) -> None:
    from bot.api import errors

    job = await live.submitting.submit(request())
    assert job.task_id is not None
    sim.forget_task(job.task_id)
    for _ in range(3):  # "not found" is believed only when said three times in a row
        with pytest.raises(errors.TaskNotFoundError) as caught:
            await real_api.task_result(job.task_id)
        failed = await live.lifecycle.poll_failed(job.id, caught.value)
    assert failed.state is JobState.FAILED
    assert (await live.moderation.balance(GUILD, USER)).held == 0


async def test_racing_submissions_reach_the_service_only_when_paid_for(
    live: Core, sim: Simulator
) -> None:
    await live.moderation.set_allowance(GUILD, USER, 150, MOD)  # 5 × 30
    await live.moderation.update_guild_settings(GUILD, MOD, max_concurrent=50)
    outcomes = await asyncio.gather(
        *(live.submitting.submit(request()) for _ in range(20)), return_exceptions=True
    )
    accepted = [o for o in outcomes if isinstance(o, Job)]
    refused = [o for o in outcomes if isinstance(o, Refusal)]
    assert len(accepted) == 5 and len(refused) == 15
    assert all(job.state is JobState.QUEUED for job in accepted)
    assert len(sim.submissions) == 5 and len(sim.tasks) == 5
    assert (await live.moderation.balance(GUILD, USER)).available == 0
