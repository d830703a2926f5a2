"""Helpers for the simulator's tests: plain HTTP calls, no `VideoAPI` in between."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from bot.simulator import Simulator
from tests.api.api_samples import IMAGE

Q3_PATH = "/v3/async/vidu-q3-pro-i2v"
RESULT = "/v3/async/task-result"


def auth(sim: Simulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.api_key}"}


async def call(
    sim: Simulator, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
) -> tuple[int, Any, CIMultiDictProxy[str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, sim.base_url + path, headers=headers, **kwargs) as response,
    ):
        body = await response.json(content_type=None)
        return response.status, body, response.headers


async def submit(sim: Simulator, *, webhook: str | None = None, **fields: Any) -> str:
    """Submit a valid Q3 body (plus `fields`, and `extra.webhook.url` if given); the task id."""
    body: dict[str, Any] = {"images": [IMAGE], **fields}
    if webhook is not None:
        body["extra"] = {"webhook": {"url": webhook}}
    status, answer, _ = await call(sim, "POST", Q3_PATH, headers=auth(sim), json=body)
    assert status == 200, answer
    task_id: str = answer["task_id"]
    return task_id


async def read(sim: Simulator, task_id: str) -> dict[str, Any]:
    """The `task` object of the task's current Task Result."""
    status, answer, _ = await call(
        sim, "GET", RESULT, headers=auth(sim), params={"task_id": task_id}
    )
    assert status == 200, answer
    info: dict[str, Any] = answer["task"]
    return info


async def fetch_status(url: str) -> int:
    """The HTTP status a GET of `url` gets (a video link, say)."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        await response.read()
        return response.status


async def wait_sent(sim: Simulator, count: int, timeout: float = 2.0) -> None:
    """Wait until the simulator has recorded `count` webhook attempts."""
    deadline = time.monotonic() + timeout
    while len(sim.webhooks_sent) < count:
        assert time.monotonic() < deadline, f"only {len(sim.webhooks_sent)} webhook attempts"
        await asyncio.sleep(0.01)
