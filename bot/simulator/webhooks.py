"""Webhooks: the simulator POSTs a task's result to the URL its submission named.

A submission may carry `"extra": {"webhook": {"url": "https://…"}}`. When such a task
reaches its end (SUCCEED or FAILED, at its scheduled time, read or not) the simulator POSTs

    {"event_type": "ASYNC_TASK_RESULT", "payload": <the Task Result body at that moment>}

to the URL with aiohttp. An attempt that times out (`webhook_timeout`, 5 s), cannot
connect or gets a non-2xx answer is retried after `webhook_retry_delay`, up to
`webhook_retries` (5) more times. Every attempt is recorded as a `WebhookDelivery`.

How a task's webhook goes out is its `webhook_mode` (else the config's):

- `"normal"`: once, at the task's end.
- `"late"`: once, `webhook_delay` seconds after the task's end.
- `"duplicate"`: twice in a row at the task's end (each with its own retries).
- `"drop"`: never (nothing is recorded).

`Webhooks.forge` posts a made-up payload claiming an end that did not happen, with a video
URL whose signature is invalid: a receiver must confirm with the Task Result API.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from bot.api.models import TaskStatus
from bot.simulator.media import video_url
from bot.simulator.results import task_result_body
from bot.simulator.tasks import SimTask, SimulatorState, WebhookMode

log = logging.getLogger(__name__)

WEBHOOK_EVENT = "ASYNC_TASK_RESULT"


@dataclass
class WebhookDelivery:
    """One attempt to deliver a webhook: what was posted where, and how it went."""

    url: str
    body: dict[str, Any]  # the JSON posted: {"event_type": …, "payload": …}
    task_id: str
    attempt: int  # 1 for the first try of a delivery, 2 for its first retry, …
    at: float  # time.monotonic() when the attempt started
    status: int | None = None  # the receiver's HTTP status, if it answered
    error: str | None = None  # why there was no answer (timeout, connection)
    forged: bool = False

    @property
    def payload(self) -> dict[str, Any]:
        """The Task Result body the webhook carried."""
        payload: dict[str, Any] = self.body["payload"]
        return payload

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def forged_body(state: SimulatorState, task_id: str, status: str, origin: str) -> dict[str, Any]:
    """A webhook body claiming `task_id` ended with `status`; its video URL is not signed."""
    task = state.tasks.get(task_id)
    info: dict[str, Any] = {
        "task_id": task_id,
        "task_type": task.model.upper().replace("-", "_") if task else "",
        "status": status,
        "reason": "forged" if status == TaskStatus.FAILED.value else "",
        "eta": 0,
        "progress_percent": 100,
    }
    videos: list[dict[str, Any]] = []
    if status == TaskStatus.SUCCEED.value:
        expires = int(time.time()) + 3600
        url = video_url(origin, task_id, expires, "forged" + secrets.token_hex(13))
        videos.append({"video_url": url, "video_url_ttl": "3600", "video_type": "mp4"})
    payload = {"task": info, "extra": {}, "videos": videos, "images": [], "audios": []}
    return {"event_type": WEBHOOK_EVENT, "payload": payload}


class Webhooks:
    """The webhook sender: one timer per task with a webhook URL, and the deliveries."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state
        self.sent: list[WebhookDelivery] = []
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._sending: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def watch(self, task: SimTask) -> None:
        """Send `task`'s webhook when it ends (nothing to do without a webhook URL)."""
        if task.webhook_url is None or self.state.closing.is_set():
            return
        self.unwatch(task.task_id)
        self._timers[task.task_id] = asyncio.create_task(self._at_end(task))

    def unwatch(self, task_id: str) -> None:
        """Forget a task's pending webhook (one already going out still goes)."""
        timer = self._timers.pop(task_id, None)
        if timer is not None:
            timer.cancel()

    def rescheduled(self, task: SimTask) -> None:
        """`task` ends earlier than planned: its pending timer is set again."""
        if task.task_id in self._timers:
            self.watch(task)

    async def forge(
        self, url: str, task_id: str, status: str, origin: str
    ) -> list[WebhookDelivery]:
        """Post a forged webhook for `task_id` now; its delivery attempts."""
        return await self.deliver(
            url, forged_body(self.state, task_id, status, origin), task_id, forged=True
        )

    async def close(self) -> None:
        """Stop every timer and every delivery under way, then close the HTTP session."""
        pending = [*self._timers.values(), *self._sending]
        self._timers.clear()
        for job in pending:
            job.cancel()
        # gather, not a suppressed await: a cancellation of close() itself still propagates.
        await asyncio.gather(*pending, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _at_end(self, task: SimTask) -> None:
        # Sleep until the end; loop because the end may have moved later meanwhile.
        while True:
            remaining = task.ends_at - time.monotonic()
            if remaining <= 0:
                break
            await asyncio.sleep(remaining)
        if self._timers.get(task.task_id) is asyncio.current_task():
            del self._timers[task.task_id]
        mode: WebhookMode = task.webhook_mode or self.state.config.webhook_mode
        if mode == "drop" or task.webhook_url is None:
            log.debug("simulator: webhook of task %s dropped", task.task_id)
            return
        body = {
            "event_type": WEBHOOK_EVENT,
            "payload": task_result_body(self.state, task, task.origin),
        }
        sending = asyncio.create_task(self._send(task.webhook_url, body, task.task_id, mode))
        self._sending.add(sending)
        sending.add_done_callback(self._sending.discard)

    async def _send(self, url: str, body: dict[str, Any], task_id: str, mode: WebhookMode) -> None:
        if mode == "late":
            await asyncio.sleep(self.state.config.webhook_delay)
        for _ in range(2 if mode == "duplicate" else 1):
            await self.deliver(url, body, task_id)

    async def deliver(
        self, url: str, body: dict[str, Any], task_id: str, *, forged: bool = False
    ) -> list[WebhookDelivery]:
        """POST `body` to `url`, retrying as configured; the attempts, each also recorded."""
        config = self.state.config
        if self._session is None:
            self._session = aiohttp.ClientSession()
        attempts: list[WebhookDelivery] = []
        for attempt in range(1, max(config.webhook_retries, 0) + 2):
            record = WebhookDelivery(url, body, task_id, attempt, time.monotonic(), forged=forged)
            timeout = aiohttp.ClientTimeout(total=config.webhook_timeout)
            try:
                async with self._session.post(url, json=body, timeout=timeout) as response:
                    record.status = response.status
                    await response.read()
            except TimeoutError:
                record.error = f"no answer within {config.webhook_timeout:g} s"
            except aiohttp.ClientError as exc:
                record.error = f"{type(exc).__name__}: {exc}"
            self.sent.append(record)
            attempts.append(record)
            log.debug(
                "simulator: webhook %s attempt %d → %s", url, attempt, record.status or record.error
            )
            if record.ok:
                break
            if attempt <= config.webhook_retries:
                await asyncio.sleep(config.webhook_retry_delay)
        return attempts


WEBHOOKS_KEY = web.AppKey("simulator_webhooks", Webhooks)
