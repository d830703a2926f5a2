"""Webhooks in the core: a webhook only asks for a read of its own job, and the bot waits for
webhooks only while they are seen to arrive."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from jobkit import FakeAPI, make_settings, request, result

from bot.core import Core
from bot.core.schedule import Learned, safety_read
from bot.core.webhooks import AT_LEAST, GRACE, WebhookTrust
from storage import Database, Job, JobState
from tests.shared import Clock

PUBLIC = "https://bot.example/hooks"


@pytest.fixture
def hooked(make_core: Callable[..., Core]) -> Core:
    return make_core(webhook_public_url=PUBLIC)


async def test_each_submission_carries_its_own_unguessable_address(
    hooked: Core, api: FakeAPI
) -> None:
    first = await hooked.submitting.submit(request())
    second = await hooked.submitting.submit(request())
    assert first.webhook_token and second.webhook_token
    assert first.webhook_token != second.webhook_token and len(first.webhook_token) >= 32
    assert api.webhooks == [
        f"{PUBLIC}/webhooks/vidu/{first.webhook_token}",
        f"{PUBLIC}/webhooks/vidu/{second.webhook_token}",
    ]


async def test_without_a_public_url_no_webhook_is_asked_for(core: Core, api: FakeAPI) -> None:
    job = await core.submitting.submit(request())
    assert job.webhook_token is None and api.webhooks == [None]


async def test_a_webhook_asks_for_one_read_of_its_job_now(hooked: Core, clock: Clock) -> None:
    job = await hooked.submitting.submit(request())
    assert job.webhook_token is not None and job.next_poll_at is not None
    assert job.next_poll_at > clock.now
    assert await hooked.lifecycle.webhook_hint(job.webhook_token, job.task_id) == "read"
    hinted = await hooked.lifecycle.get_job(job.id)
    assert hinted is not None
    assert hinted.next_poll_at == clock.now and hinted.read_priority == 0
    assert hinted.webhook_at == clock.now
    assert hinted.state is JobState.QUEUED  # nothing in the body is believed
    assert [j.id for j in await hooked.leases.reads_due()] == [job.id]
    # The same webhook again (sent twice) asks for no second read...
    clock.advance(seconds=1)
    assert await hooked.lifecycle.webhook_hint(job.webhook_token) == "noted"
    # ...but one some time later does (a webhook that came before the service's answer).
    clock.advance(seconds=10)
    assert await hooked.lifecycle.webhook_hint(job.webhook_token) == "read"


async def test_unknown_and_mismatched_webhooks_change_nothing(hooked: Core) -> None:
    job = await hooked.submitting.submit(request())
    assert job.webhook_token is not None
    assert await hooked.lifecycle.webhook_hint("x" * 32) == "unknown"
    assert await hooked.lifecycle.webhook_hint(job.webhook_token, "someone-elses-task") == (
        "mismatch"
    )
    assert await hooked.lifecycle.get_job(job.id) == job


async def test_a_webhook_after_the_end_is_remembered_but_reads_nothing(
    hooked: Core, clock: Clock
) -> None:
    job = await hooked.submitting.submit(request())
    assert job.webhook_token is not None
    done = await hooked.lifecycle.apply_result(job.id, result("SUCCEED"))
    clock.advance(seconds=2)
    assert await hooked.lifecycle.webhook_hint(job.webhook_token) == "noted"
    after = await hooked.lifecycle.get_job(job.id)
    assert after is not None and after.webhook_at == clock.now
    assert after.next_poll_at == done.next_poll_at and after.state is JobState.SUCCEEDED


async def finished(core: Core, clock: Clock, *, webhook: bool) -> Job:
    """A job the service made a video for, whose webhook came or not."""
    job = await core.submitting.submit(request())
    assert job.webhook_token is not None
    if webhook:
        await core.lifecycle.webhook_hint(job.webhook_token)
    done = await core.lifecycle.apply_result(job.id, result("SUCCEED"))
    await core.lifecycle.mark_delivered(job.id, 1)
    return done


async def test_webhooks_are_trusted_only_while_the_newest_jobs_all_got_theirs(
    make_core: Callable[..., Core], db: Database, clock: Clock
) -> None:
    settings: dict[str, Any] = {"webhook_public_url": PUBLIC, "default_max_concurrent_jobs": 50}
    core = make_core(**settings, default_allowance=10_000)
    trust = WebhookTrust(db, make_settings(**settings), now=clock, clock=lambda: 0.0)

    async def trusted() -> bool:
        return await WebhookTrust(db, make_settings(**settings), now=clock).trusted()

    assert not await trust.trusted()  # nothing seen yet
    for _ in range(AT_LEAST):
        await finished(core, clock, webhook=True)
    assert not await trusted()  # ended moments ago: a webhook could still be on its way
    clock.advance(seconds=GRACE + 1)
    assert await trusted()
    assert not await trust.trusted()  # an answer is kept a little while
    await finished(core, clock, webhook=False)
    clock.advance(seconds=GRACE + 1)
    assert not await trusted()  # one missing webhook ends the trust at once...
    for _ in range(4):
        await finished(core, clock, webhook=True)
    clock.advance(seconds=GRACE + 1)
    assert not await trusted()  # ...until the newest five all had theirs again
    await finished(core, clock, webhook=True)
    clock.advance(seconds=GRACE + 1)
    assert await trusted()
    # Without a public URL no webhook is asked for, so none is waited for.
    assert not await WebhookTrust(db, make_settings(), now=clock).trusted()


async def test_a_job_waits_for_its_webhook_until_the_safety_read(
    hooked: Core, clock: Clock
) -> None:
    learned = Learned(low=30, typical=45, high=60)
    safety = safety_read(learned)
    assert safety is not None and safety > learned.high
    job = await hooked.submitting.submit(request())
    assert await hooked.lifecycle.hold_for_webhook(job, safety)
    held = await hooked.lifecycle.get_job(job.id)
    assert held is not None and held.next_poll_at == job.created_at + timedelta(seconds=safety)
    assert await hooked.leases.reads_due() == []
    # The webhook comes: read now, and never held again.
    assert held.webhook_token is not None
    await hooked.lifecycle.webhook_hint(held.webhook_token)
    named = await hooked.lifecycle.get_job(job.id)
    assert named is not None and not await hooked.lifecycle.hold_for_webhook(named, safety)
    # A job whose webhook never came is read once the safety read is due.
    other = await hooked.submitting.submit(request())
    clock.advance(seconds=safety)
    assert not await hooked.lifecycle.hold_for_webhook(other, safety)


def test_nothing_learned_means_no_waiting_for_webhooks() -> None:
    assert safety_read(None) is None
