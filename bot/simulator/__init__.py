"""A loopback simulator of the Vidu endpoints of the Novita AI API.

It speaks the documented shapes (both submission endpoints, the Task Result API, error
bodies, signed video URLs with a TTL) and can be told to misbehave the ways the real
service may: 429 with Retry-After, 5xx, slow answers, bodies that are not JSON, tasks that
fail, unknown tasks, a submission accepted whose answer never arrives — one at a time, or
at random at a given rate (`Simulator.fault_randomly`). The bot runs on it
with `NOVITA_SIMULATE=1`; tests inspect every request it received.

    async with Simulator(SimulatorConfig(task_seconds=0)) as sim:
        api = VideoAPI(sim.base_url, sim.api_key)

`python -m bot.simulator` runs it standalone and prints its base URL and key.

For a poller's tests and benchmarks, each task can have its own duration
(`sim.next_task_seconds`, `SimulatorConfig.duration_of`), the service can misjudge the
time left (`SimulatorConfig.eta_mode`: accurate, too_long, too_short, stale,
progress_only, none; see `bot.simulator.tasks`), and tasks submitted with
`extra.webhook.url` get a webhook at their end, on time, late, twice or never, and forged
ones on demand (see `bot.simulator.webhooks`).

Modules: `tasks` (config, faults, task state and timeline), `media` (the sample video and
its signed URLs), `results` (the Task Result body), `routes` (the HTTP handlers),
`webhooks` (the webhook sender), `server` (`Simulator`), `__main__` (the CLI). It builds on
`bot.api.models` and `bot.api.endpoints` only.
"""

from __future__ import annotations

from bot.simulator.media import MEDIA_PREFIX, sample_mp4, video_of_size
from bot.simulator.results import task_result_body
from bot.simulator.routes import HTML_ERROR_PAGE, RESULT_PATH, create_simulator
from bot.simulator.server import Simulator
from bot.simulator.tasks import (
    DEFAULT_FAILURE_REASON,
    STATE_KEY,
    EtaMode,
    Fault,
    FaultKind,
    RandomFaults,
    Reading,
    RecordedRequest,
    Route,
    SimTask,
    SimulatorConfig,
    SimulatorState,
    WebhookMode,
)
from bot.simulator.webhooks import WEBHOOK_EVENT, WEBHOOKS_KEY, WebhookDelivery, Webhooks

__all__ = [
    "DEFAULT_FAILURE_REASON",
    "HTML_ERROR_PAGE",
    "MEDIA_PREFIX",
    "RESULT_PATH",
    "STATE_KEY",
    "WEBHOOKS_KEY",
    "WEBHOOK_EVENT",
    "EtaMode",
    "Fault",
    "FaultKind",
    "RandomFaults",
    "Reading",
    "RecordedRequest",
    "Route",
    "SimTask",
    "Simulator",
    "SimulatorConfig",
    "SimulatorState",
    "WebhookDelivery",
    "WebhookMode",
    "Webhooks",
    "create_simulator",
    "sample_mp4",
    "task_result_body",
    "video_of_size",
]
