"""`VideoAPI.submit(..., webhook_url=...)`: the body carries `extra.webhook.url`."""

from __future__ import annotations

import pytest

from bot.api import SubmissionOutcomeUnknown, TaskResult, VideoAPI
from bot.api.endpoints import Q2_REFERENCE2VIDEO as Q2
from bot.api.endpoints import Q3_PRO_I2V as Q3
from bot.simulator import Simulator
from tests.api.api_samples import q2_request, q3_request
from tests.simulator.receiver import webhook_receiver

HOOK = "https://bot.example.test/novita/webhook?job=7"


async def test_submit_sends_the_webhook_url_beside_the_request(
    sim: Simulator, api: VideoAPI
) -> None:
    request = q3_request(seed=3)
    task_id = await api.submit(Q3, request, webhook_url=HOOK)
    (post,) = sim.submissions
    assert post.json == {**request.to_body(), "extra": {"webhook": {"url": HOOK}}}
    assert sim.tasks[task_id].webhook_url == HOOK
    assert "extra" not in request.to_body()  # the model itself is untouched


async def test_submit_without_a_webhook_sends_no_extra(sim: Simulator, api: VideoAPI) -> None:
    await api.submit(Q2, q2_request())
    (post,) = sim.submissions
    assert "extra" not in post.json


@pytest.mark.parametrize("url", ["", "ftp://x", "bot.example.test/hook"])
async def test_a_webhook_url_that_is_not_http_is_refused_before_sending(
    sim: Simulator, api: VideoAPI, url: str
) -> None:
    with pytest.raises(ValueError, match="http"):
        await api.submit(Q3, q3_request(), webhook_url=url)
    assert sim.submissions == []


async def test_a_submission_with_a_webhook_is_still_never_retried_when_unknown(
    sim: Simulator, api: VideoAPI
) -> None:
    sim.fail_next("submit", status=503)
    with pytest.raises(SubmissionOutcomeUnknown):
        await api.submit(Q3, q3_request(), webhook_url=HOOK)
    assert len(sim.submissions) == 1


async def test_the_webhook_arrives_and_a_read_confirms_it(sim: Simulator, api: VideoAPI) -> None:
    sim.next_task_seconds = [0.2]
    async with webhook_receiver() as receiver:
        task_id = await api.submit(Q3, q3_request(), webhook_url=receiver.url)
        (arrival,) = await receiver.wait_for(1)
    hinted = TaskResult.model_validate(arrival.json["payload"])
    assert hinted.task.task_id == task_id and hinted.succeeded
    confirmed = await api.task_result(task_id)
    assert confirmed.succeeded and confirmed.video == hinted.video
