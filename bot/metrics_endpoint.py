"""`GET /metrics` in the Prometheus text format, served by aiohttp inside the bot's own event
loop (started and stopped by the composition root with `async with`, like every other
resource: no thread, nothing left listening after a stop)."""

from __future__ import annotations

import logging
from typing import Self

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.listening import Listener
from bot.metrics import Metrics

log = logging.getLogger(__name__)

PATH = "/metrics"


class MetricsEndpoint(Listener):
    """`async with MetricsEndpoint(metrics, host, port):` serves `metrics` on /metrics."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self.metrics = metrics
        app = web.Application()
        app.router.add_get(PATH, self._serve)
        super().__init__(app, host, port, settings_named="METRICS_HOST / METRICS_PORT", path=PATH)

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        log.info("metrics of %s on %s", self.metrics.process, self.url)
        return self

    async def _serve(self, _request: web.Request) -> web.Response:
        await self.metrics.refresh()
        return web.Response(
            body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
