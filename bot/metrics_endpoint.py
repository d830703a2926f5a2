"""`GET /metrics` in the Prometheus text format, served by aiohttp inside the bot's own event
loop (started and stopped by the composition root with `async with`, like every other
resource: no thread, nothing left listening after a stop)."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Self

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.metrics import Metrics
from bot.settings import ConfigurationError

log = logging.getLogger(__name__)

PATH = "/metrics"


class MetricsEndpoint:
    """`async with MetricsEndpoint(metrics, host, port):` serves `metrics` on /metrics."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        app = web.Application()
        app.router.add_get(PATH, self._serve)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{PATH}"

    async def __aenter__(self) -> Self:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as error:
            await self._runner.cleanup()
            raise ConfigurationError(
                f"METRICS_HOST / METRICS_PORT: cannot listen on {self.host}:{self.port} "
                f"({error.strerror or error})"
            ) from None
        log.info("metrics of %s on %s", self.metrics.process, self.url)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._runner.cleanup()

    async def _serve(self, _request: web.Request) -> web.Response:
        await self.metrics.refresh()
        return web.Response(
            body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
