"""`Simulator`: the simulator running in-process, with its records and fault knobs.

    async with Simulator(SimulatorConfig(task_seconds=0)) as sim:
        api = VideoAPI(sim.base_url, sim.api_key)
        sim.fail_next("submit", status=503)

Every request is recorded (`sim.requests`, `sim.submissions`, `sim.result_reads`); every
task is inspectable and changeable (`sim.tasks`, `finish_task`, `fail_task`, `forget_task`).
Faults come one at a time (`fail_next`, `delay_next`, `hang_next_submission`, …) or as
background noise at a rate (`fault_randomly`).

Knobs for the read scheduler's tests and benchmarks: `sim.next_task_seconds` (durations of
the next tasks, in order), `config.duration_of`, `config.eta_mode` (or a task's own
`eta_mode`), and webhooks: `config.webhook_mode` / `webhook_next`, `send_forged_webhook`,
with every attempt in `sim.webhooks_sent`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from aiohttp import web

from bot.simulator.routes import RESULT_PATH, create_simulator
from bot.simulator.tasks import (
    DEFAULT_FAILURE_REASON,
    STATE_KEY,
    Fault,
    RandomFaults,
    RecordedRequest,
    Route,
    SimTask,
    SimulatorConfig,
    WebhookMode,
)
from bot.simulator.webhooks import WEBHOOKS_KEY, WebhookDelivery

log = logging.getLogger(__name__)


class Simulator:
    """The simulator running in-process on 127.0.0.1 and an ephemeral port."""

    def __init__(
        self, config: SimulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.app = create_simulator(config)
        self.state = self.app[STATE_KEY]
        self.webhooks = self.app[WEBHOOKS_KEY]
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    # --- lifetime ----------------------------------------------------------------------

    async def start(self) -> None:
        # handler_cancellation: a client that gives up ends a hung answer at once.
        self._runner = web.AppRunner(
            self.app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        log.info("video API simulator at %s", self.base_url)

    async def close(self) -> None:
        self.state.closing.set()
        await self.webhooks.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- inspection --------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_key(self) -> str:
        return self.config.api_key

    @property
    def config(self) -> SimulatorConfig:
        return self.state.config

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.state.requests

    @property
    def tasks(self) -> dict[str, SimTask]:
        return self.state.tasks

    @property
    def faults(self) -> list[Fault]:
        return self.state.faults

    @property
    def webhooks_sent(self) -> list[WebhookDelivery]:
        """Every webhook delivery attempt so far, in the order they ended."""
        return self.webhooks.sent

    @property
    def next_task_seconds(self) -> list[float]:
        """Durations of the next submitted tasks, used one each in order (then the config's)."""
        return self.state.next_task_seconds

    @next_task_seconds.setter
    def next_task_seconds(self, seconds: list[float]) -> None:
        self.state.next_task_seconds = list(seconds)

    def requests_to(self, method: str, path_prefix: str = "/") -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    @property
    def submissions(self) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if r.method == "POST" and r.path.startswith("/v3/async/") and r.path != RESULT_PATH
        ]

    @property
    def result_reads(self) -> list[RecordedRequest]:
        return self.requests_to("GET", RESULT_PATH)

    # --- fault knobs -------------------------------------------------------------------

    def inject(self, fault: Fault) -> Fault:
        self.state.faults.append(fault)
        return fault

    def fail_next(
        self,
        route: Route = "result",
        *,
        status: int = 500,
        reason: str = "SERVICE_NOT_AVAILABLE",
        message: str = "simulated failure",
        times: int = 1,
        retry_after: float | str | None = None,
    ) -> Fault:
        """Answer the next `times` requests of `route` with an error body."""
        return self.inject(
            Fault(
                route,
                "status",
                status=status,
                reason=reason,
                message=message,
                times=times,
                retry_after=retry_after,
            )
        )

    def rate_limit_next(
        self, route: Route = "result", *, retry_after: float | str | None = 1, times: int = 1
    ) -> Fault:
        return self.fail_next(
            route,
            status=429,
            reason="RATE_LIMIT_EXCEEDED",
            message="too many requests",
            times=times,
            retry_after=retry_after,
        )

    def task_not_found_next(self, *, times: int = 1) -> Fault:
        return self.fail_next(
            "result", status=404, reason="TASK_NOT_FOUND", message="task not found", times=times
        )

    def malformed_next(
        self,
        route: Route = "result",
        *,
        body: bytes | None = None,
        status: int = 200,
        content_type: str = "text/html",
        times: int = 1,
    ) -> Fault:
        """Answer with a body that is not the documented JSON (HTML by default)."""
        return self.inject(
            Fault(
                route, "malformed", status=status, body=body, content_type=content_type, times=times
            )
        )

    def delay_next(self, route: Route = "result", *, seconds: float, times: int = 1) -> Fault:
        """Answer normally, but only after `seconds`."""
        return self.inject(Fault(route, "delay", seconds=seconds, times=times))

    def hang_next_submission(self, *, seconds: float = 0.0) -> Fault:
        """Create the next submitted task, then never answer (until `seconds` or close)."""
        return self.inject(Fault("submit", "hang_after_accept", seconds=seconds))

    def disconnect_next(self, route: Route = "submit", *, times: int = 1) -> Fault:
        """Drop the connection of the next request without answering (no task created)."""
        return self.inject(Fault(route, "disconnect", times=times))

    def fault_randomly(
        self,
        route: Route,
        faults: Sequence[Fault],
        *,
        rate: float,
        seed: int | None = None,
    ) -> RandomFaults:
        """From now on, each request of `route` plays one of `faults` with probability `rate`
        (a soak's background noise; `rule.played` lists what was drawn, `rule.stop()` ends it).

        Build the faults with `Fault(route, kind, ...)`: `"status"` (5xx, 429 with
        `retry_after`), `"delay"` (longer than the client's timeout: a timeout),
        `"disconnect"`, `"malformed"`, and on submit `"hang_after_accept"` (`seconds`).
        """
        rule = RandomFaults(route, rate, tuple(faults), random.Random(seed))
        self.state.random_faults.append(rule)
        return rule

    def fail_next_task(self, reason: str = DEFAULT_FAILURE_REASON) -> None:
        """The next task created will end FAILED with `reason`."""
        self.state.next_task_failures.append(reason)

    def fail_task(self, task_id: str, reason: str = DEFAULT_FAILURE_REASON) -> None:
        self.state.tasks[task_id].fail_reason = reason

    def finish_task(self, task_id: str) -> None:
        """Make a task reach its end now (its webhook, if any, goes out now too)."""
        task = self.state.tasks[task_id]
        task.seconds = max(0.0, time.monotonic() - task.created)
        self.webhooks.rescheduled(task)

    def forget_task(self, task_id: str) -> None:
        """From now on the service answers TASK_NOT_FOUND for this task (and sends no webhook)."""
        self.state.tasks.pop(task_id, None)
        self.webhooks.unwatch(task_id)

    # --- webhook knobs -----------------------------------------------------------------

    def webhook_next(self, mode: WebhookMode, *, times: int = 1) -> None:
        """The next `times` tasks submitted with a webhook URL send it in `mode`.

        `"normal"`, `"late"` (`config.webhook_delay` after the end), `"duplicate"` (twice)
        or `"drop"` (never). Other tasks follow `config.webhook_mode`; a task's own
        `webhook_mode` can also be set on `sim.tasks[task_id]` until it ends.
        """
        self.state.next_webhook_modes.extend([mode] * times)

    async def send_forged_webhook(
        self, url: str, task_id: str, status: str = "TASK_STATUS_SUCCEED"
    ) -> list[WebhookDelivery]:
        """POST a webhook nobody should trust: `task_id` (running, or unknown) has `status`.

        A forged success carries a video URL whose signature is invalid (the media route
        answers 403). Delivered and recorded like a real one (`forged=True`).
        """
        return await self.webhooks.forge(url, task_id, status, self.base_url)
