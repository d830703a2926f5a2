"""A small webhook receiver on 127.0.0.1 for tests: records what arrives, answers as told."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Arrival:
    at: float  # time.monotonic() when the POST arrived
    json: Any


@dataclass
class Receiver:
    """Answers 200 unless `answers` says otherwise (one status, or seconds to hang, each)."""

    url: str = ""
    arrivals: list[Arrival] = field(default_factory=list)
    answers: list[int | float] = field(default_factory=list)  # int: status, float: hang
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.arrivals.append(Arrival(time.monotonic(), await request.json()))
        self._changed.set()
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, float):
            await asyncio.sleep(answer)
            return web.Response(status=200)
        return web.Response(status=answer)

    async def wait_for(self, count: int, timeout: float = 2.0) -> list[Arrival]:
        """The first `count` arrivals, waiting up to `timeout` seconds for them."""
        async with asyncio.timeout(timeout):
            while len(self.arrivals) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.arrivals[:count]


@asynccontextmanager
async def webhook_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()
