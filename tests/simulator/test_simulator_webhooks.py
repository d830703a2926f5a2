"""Webhooks: sent at a task's end to `extra.webhook.url`, late, twice, never, or forged."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.api.models import TaskResult
from bot.simulator import WEBHOOK_EVENT, Simulator, SimulatorConfig
from tests.api.api_samples import IMAGE
from tests.simulator.receiver import Receiver
from tests.simulator.simkit import Q3_PATH, auth, call, fetch_status, read, submit, wait_sent


@pytest.fixture(autouse=True)
def quick_retries(sim: Simulator) -> None:
    sim.config.webhook_retry_delay = 0.05
    sim.config.webhook_timeout = 0.5


async def test_webhook_arrives_at_the_end_unread_with_the_task_result(
    sim: Simulator, receiver: Receiver
) -> None:
    sim.next_task_seconds = [0.4]
    start = time.monotonic()
    task_id = await submit(sim, webhook=receiver.url, prompt="a cat walks")
    task = sim.tasks[task_id]
    assert task.extra == {"webhook": {"url": receiver.url}}
    assert task.webhook_url == receiver.url
    assert "extra" not in task.body and sim.submissions[0].json["extra"] == task.extra

    (arrival,) = await receiver.wait_for(1)
    assert 0.4 <= arrival.at - start < 0.7
    assert sim.result_reads == []  # nobody polled: the timer sent it
    assert set(arrival.json) == {"event_type", "payload"}
    assert arrival.json["event_type"] == WEBHOOK_EVENT == "ASYNC_TASK_RESULT"
    result = TaskResult.model_validate(arrival.json["payload"])
    assert result.task.task_id == task_id and result.succeeded
    assert (result.task.eta, result.task.progress_percent) == (0, 100)
    assert result.video is not None and await fetch_status(result.video.video_url) == 200
    # What the webhook said is what a read says now.
    assert (await read(sim, task_id))["status"] == "TASK_STATUS_SUCCEED"

    (sent,) = sim.webhooks_sent
    assert (sent.url, sent.task_id, sent.attempt, sent.status, sent.error) == (
        receiver.url,
        task_id,
        1,
        200,
        None,
    )
    assert sent.body == arrival.json and sent.payload == arrival.json["payload"]
    assert sent.ok and not sent.forged and 0.4 <= sent.at - start < 0.7


async def test_a_failed_task_sends_its_failure(sim: Simulator, receiver: Receiver) -> None:
    sim.next_task_seconds = [0.2]
    sim.fail_next_task("moderation said no")
    task_id = await submit(sim, webhook=receiver.url)
    (arrival,) = await receiver.wait_for(1)
    task = arrival.json["payload"]["task"]
    assert (task["task_id"], task["status"], task["reason"]) == (
        task_id,
        "TASK_STATUS_FAILED",
        "moderation said no",
    )
    assert arrival.json["payload"]["videos"] == []


async def test_late_webhook_comes_webhook_delay_after_the_end(
    sim: Simulator, receiver: Receiver
) -> None:
    sim.config.webhook_delay = 0.5
    sim.webhook_next("late")
    sim.next_task_seconds = [0.2, 0.2]
    start = time.monotonic()
    late = await submit(sim, webhook=receiver.url)
    on_time = await submit(sim, webhook=receiver.url)  # the knob was for one task only
    first, second = await receiver.wait_for(2)
    assert first.json["payload"]["task"]["task_id"] == on_time
    assert 0.2 <= first.at - start < 0.45
    assert second.json["payload"]["task"]["task_id"] == late
    assert 0.7 <= second.at - start < 1.0
    # The payload is the result as it was at the task's end.
    assert second.json["payload"]["task"]["status"] == "TASK_STATUS_SUCCEED"


async def test_duplicate_webhook_is_sent_twice(sim: Simulator, receiver: Receiver) -> None:
    sim.config.webhook_mode = "duplicate"
    sim.next_task_seconds = [0.2]
    task_id = await submit(sim, webhook=receiver.url)
    first, second = await receiver.wait_for(2)
    assert first.json == second.json
    assert first.json["payload"]["task"]["task_id"] == task_id
    await wait_sent(sim, 2)
    assert [(s.attempt, s.status) for s in sim.webhooks_sent] == [(1, 200), (1, 200)]
    await asyncio.sleep(0.2)
    assert len(receiver.arrivals) == 2


async def test_dropped_webhook_never_comes(sim: Simulator, receiver: Receiver) -> None:
    sim.webhook_next("drop")
    sim.next_task_seconds = [0.1, 0.3]
    dropped = await submit(sim, webhook=receiver.url)
    kept = await submit(sim, webhook=receiver.url)
    (arrival,) = await receiver.wait_for(1)
    assert arrival.json["payload"]["task"]["task_id"] == kept
    await asyncio.sleep(0.2)
    assert len(receiver.arrivals) == 1
    assert [s.task_id for s in sim.webhooks_sent] == [kept]
    assert (await read(sim, dropped))["status"] == "TASK_STATUS_SUCCEED"  # polling still works


async def test_a_tasks_own_mode_can_be_set_after_submission(
    sim: Simulator, receiver: Receiver
) -> None:
    sim.next_task_seconds = [0.3]
    task_id = await submit(sim, webhook=receiver.url)
    sim.tasks[task_id].webhook_mode = "drop"
    await asyncio.sleep(0.5)
    assert receiver.arrivals == [] and sim.webhooks_sent == []


async def test_retries_after_500_until_a_2xx(sim: Simulator, receiver: Receiver) -> None:
    receiver.answers = [500, 503]
    sim.next_task_seconds = [0.1]
    task_id = await submit(sim, webhook=receiver.url)
    arrivals = await receiver.wait_for(3)
    assert len({str(a.json) for a in arrivals}) == 1  # the same body each time
    await wait_sent(sim, 3)
    assert [(s.task_id, s.attempt, s.status) for s in sim.webhooks_sent] == [
        (task_id, 1, 500),
        (task_id, 2, 503),
        (task_id, 3, 200),
    ]
    assert arrivals[1].at - arrivals[0].at >= 0.05  # webhook_retry_delay between attempts


async def test_retries_stop_after_webhook_retries(sim: Simulator, receiver: Receiver) -> None:
    sim.config.webhook_retries = 2
    receiver.answers = [500] * 10
    sim.next_task_seconds = [0.0]
    await submit(sim, webhook=receiver.url)
    await receiver.wait_for(3)
    await wait_sent(sim, 3)
    await asyncio.sleep(0.2)
    assert len(receiver.arrivals) == 3
    assert [s.status for s in sim.webhooks_sent] == [500, 500, 500]


async def test_a_timeout_or_a_404_is_retried(sim: Simulator, receiver: Receiver) -> None:
    sim.config.webhook_timeout = 0.2
    receiver.answers = [0.4]  # the first answer hangs past the timeout
    sim.next_task_seconds = [0.0, 0.0]
    await submit(sim, webhook=receiver.url)
    await receiver.wait_for(2)
    await wait_sent(sim, 2)
    hung, fine = sim.webhooks_sent
    assert hung.status is None and hung.error == "no answer within 0.2 s"
    assert (fine.attempt, fine.status) == (2, 200)

    sim.config.webhook_retries = 1
    nowhere = receiver.url.replace("/hook", "/nowhere")  # 404: not 2xx either
    await submit(sim, webhook=nowhere)
    await wait_sent(sim, 4)
    assert [s.status for s in sim.webhooks_sent[2:]] == [404, 404]


async def test_refused_connection_is_recorded_as_an_error(sim: Simulator) -> None:
    sim.config.webhook_retries = 1
    sim.next_task_seconds = [0.0]
    await submit(sim, webhook="http://127.0.0.1:9/hook")  # the discard port: nobody listens
    await wait_sent(sim, 2)
    assert [(s.attempt, s.status) for s in sim.webhooks_sent] == [(1, None), (2, None)]
    assert all(s.error and "Connect" in s.error for s in sim.webhooks_sent)


async def test_finish_task_sends_now_and_forget_task_sends_nothing(
    sim: Simulator, receiver: Receiver
) -> None:
    sim.next_task_seconds = [30.0, 0.3]
    finished = await submit(sim, webhook=receiver.url)
    forgotten = await submit(sim, webhook=receiver.url)
    start = time.monotonic()
    sim.finish_task(finished)
    sim.forget_task(forgotten)
    (arrival,) = await receiver.wait_for(1)
    assert arrival.at - start < 0.2
    assert arrival.json["payload"]["task"]["task_id"] == finished
    await asyncio.sleep(0.4)
    assert len(receiver.arrivals) == 1


async def test_forged_webhook_claims_what_did_not_happen(
    sim: Simulator, receiver: Receiver
) -> None:
    sim.next_task_seconds = [30.0]
    running = await submit(sim, webhook=receiver.url)
    (sent,) = await sim.send_forged_webhook(receiver.url, running)
    (arrival,) = await receiver.wait_for(1)
    assert arrival.json == sent.body and sent.forged and sent.status == 200
    forged = TaskResult.model_validate(arrival.json["payload"])
    assert forged.succeeded and forged.task.task_id == running
    assert forged.video is not None
    assert await fetch_status(forged.video.video_url) == 403  # the signature is not ours
    assert (await read(sim, running))["status"] != "TASK_STATUS_SUCCEED"

    await sim.send_forged_webhook(receiver.url, "no-such-task", status="TASK_STATUS_FAILED")
    _, failed = await receiver.wait_for(2)
    task = failed.json["payload"]["task"]
    assert (task["task_id"], task["status"]) == ("no-such-task", "TASK_STATUS_FAILED")
    assert failed.json["payload"]["videos"] == []
    assert [s.forged for s in sim.webhooks_sent] == [True, True]


async def test_extra_is_checked(sim: Simulator) -> None:
    for extra, problem in [
        ("hook", "extra must be an object"),
        ({"webhook": {"url": "ftp://x"}}, "extra.webhook.url must be an http(s) URL"),
        ({"webhook": "https://x"}, "extra.webhook.url must be an http(s) URL"),
    ]:
        status, body, _ = await call(
            sim, "POST", Q3_PATH, headers=auth(sim), json={"images": [IMAGE], "extra": extra}
        )
        assert (status, body["reason"], body["message"]) == (400, "INVALID_REQUEST_BODY", problem)
    other = await submit(sim, extra={"something": "else"})  # no webhook in it: fine
    assert sim.tasks[other].extra == {"something": "else"}
    assert sim.tasks[other].webhook_url is None
    assert len(sim.tasks) == 1


async def test_close_cancels_pending_webhooks_quickly(receiver: Receiver) -> None:
    simulator = Simulator(SimulatorConfig(task_seconds=30.0, webhook_delay=30.0))
    await simulator.start()
    await submit(simulator, webhook=receiver.url)
    simulator.webhook_next("late")
    simulator.next_task_seconds = [0.0]
    await submit(simulator, webhook=receiver.url)  # ended, its webhook waiting to go out late
    await asyncio.sleep(0.05)
    start = time.monotonic()
    await simulator.close()
    assert time.monotonic() - start < 0.5
    assert receiver.arrivals == [] and simulator.webhooks_sent == []
