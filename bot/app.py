"""The composition root: the one place that knows every part.

It opens the settings' resources with `async with` (the simulator when `NOVITA_SIMULATE=1`,
the database — PostgreSQL when `DATABASE_URL` is set, else the SQLite file, held by this one
process — the video API client), builds the core over them, then the Discord front end,
its delivery and the poller, and runs the bot. Everything closes in reverse order however
the bot stops. Nothing is global but this process's metrics (`bot.metrics`: a process is
what Prometheus scrapes), installed here under the process's name and served on
`METRICS_PORT` when that is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from bot import metrics
from bot.api import VideoAPI
from bot.core import Core
from bot.core.durations import Durations
from bot.core.lifecycle import Lifecycle
from bot.core.poller import Poller
from bot.core.shared_budget import DatabaseWindow
from bot.core.videos import Videos
from bot.core.webhooks import WebhookTrust
from bot.discord.bot import VideoBot
from bot.discord.delivery import DiscordDelivery
from bot.discord.launch import connect, point_discord_at
from bot.metrics import Metrics
from bot.metrics_endpoint import MetricsEndpoint
from bot.scratch import ScratchDir
from bot.settings import Settings
from bot.simulator import Simulator, SimulatorConfig
from bot.webhook_receiver import webhook_receiver
from storage import Database, open_database, sqlite_process_lock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resources:
    """What the bot runs on, open and ready: settings, database, API client, the core, this
    process's folder for downloads, and its metrics."""

    settings: Settings
    db: Database
    api: VideoAPI
    core: Core
    scratch: Path
    metrics: Metrics


@contextlib.asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    """Database, video API client (or the simulator behind it) and the core over them."""
    async with contextlib.AsyncExitStack() as stack:
        url = settings.database_url_value
        if url is None:
            # SQLite is the one-process store: this process holds the file until it ends, so
            # a second bot on it stops here, before it could race this one for credits.
            stack.enter_context(sqlite_process_lock(settings.database_path))
        # The database first: one that cannot be used stops the bot before anything else
        # starts (or logs).
        db = await open_database(url, settings.database_path)
        stack.push_async_callback(db.close)
        # Before the API client exists: everything it counts is this process's.
        counted = stack.enter_context(metrics.installed(Metrics(settings.process_name)))
        counted.count_jobs_with(lambda: jobs_by_state(db))
        base_url: str | None = None
        api_key: str | None = None
        if settings.novita_simulate:
            config = SimulatorConfig(task_seconds=settings.simulate_seconds)
            simulator = await stack.enter_async_context(Simulator(config))
            base_url, api_key = simulator.base_url, simulator.api_key
            log.warning(
                "NOVITA_SIMULATE=1: videos come from the built-in simulator at %s; "
                "nothing is sent to Novita and nothing is spent",
                base_url,
            )
        # The service's limits are per API key: processes sharing a database share them.
        window = None if url is None else DatabaseWindow(db)
        api = await stack.enter_async_context(
            VideoAPI.from_settings(settings, base_url=base_url, api_key=api_key, window=window)
        )
        scratch = stack.enter_context(ScratchDir(settings.download_dir))
        yield Resources(settings, db, api, Core.build(db, api, settings), scratch.path, counted)


async def jobs_by_state(db: Database) -> dict[str, int]:
    """The jobs in each state, for `vidu_jobs` (counted when /metrics is scraped)."""
    async with db.read() as store:
        counts = await store.count_jobs_by_state()
    return {state.value: count for state, count in counts.items()}


def build_bot(
    resources: Resources, *, force_sync: bool = False, sync_only: bool = False
) -> VideoBot:
    """The Discord front end over the core, with its delivery and the poller that drives it."""
    settings, core = resources.settings, resources.core
    bot = VideoBot(
        settings=settings,
        core=core,
        videos=Videos(resources.api, core.lifecycle, resources.scratch),
        meta=resources.db,
        force_sync=force_sync or sync_only,
        sync_only=sync_only,
    )
    bot.delivery = delivery = build_delivery(bot, resources)
    bot.poller = Poller(
        core.lifecycle,
        core.housekeeping,
        resources.api,
        delivery,
        settings,
        leases=core.leases,
        durations=Durations(resources.db),
        reads=resources.api.reads,
        webhooks=WebhookTrust(resources.db, settings),
    )
    return bot


def build_delivery(bot: VideoBot, resources: Resources) -> DiscordDelivery:
    """Delivery through Discord, handed the few things it uses."""
    return DiscordDelivery(
        bot,
        bot.videos,
        bot.upload_limits,
        card_edit_interval=resources.settings.card_edit_interval_seconds,
        max_video_bytes=resources.settings.max_video_bytes,
    )


@contextlib.asynccontextmanager
async def serving_metrics(resources: Resources) -> AsyncIterator[MetricsEndpoint | None]:
    """This process's /metrics on METRICS_PORT while the block runs (None: no port set)."""
    settings = resources.settings
    if settings.metrics_port is None:
        yield None
        return
    async with MetricsEndpoint(
        resources.metrics, settings.metrics_host, settings.metrics_port
    ) as endpoint:
        yield endpoint


async def run_bot(settings: Settings, *, force_sync: bool = False, sync_only: bool = False) -> None:
    point_discord_at(settings)
    async with contextlib.AsyncExitStack() as stack:
        resources = await stack.enter_async_context(open_resources(settings))
        if not sync_only:
            # Only a serving bot: `python -m bot sync` run beside it must not fight it for
            # the port. Up before the bot connects, down after it closed.
            await stack.enter_async_context(serving_metrics(resources))
        bot = await stack.enter_async_context(
            build_bot(resources, force_sync=force_sync, sync_only=sync_only)
        )
        if not sync_only:
            assert bot.poller is not None  # build_bot gives every bot its poller
            await stack.enter_async_context(
                receiving_webhooks(settings, resources.core.lifecycle, bot.poller.wake)
            )
        stop_on_signals(bot)
        await connect(bot, settings.discord_token.get_secret_value(), login_only=sync_only)


@contextlib.asynccontextmanager
async def receiving_webhooks(
    settings: Settings, lifecycle: Lifecycle, wake: Callable[[], None]
) -> AsyncIterator[None]:
    """The webhook receiver on WEBHOOK_HOST:WEBHOOK_PORT while the block runs, when
    WEBHOOK_PUBLIC_URL is set (else nothing listens); a webhook `wake`s the poller."""
    if settings.webhook_public_url is None:
        yield
        return
    receiver = webhook_receiver(lifecycle, wake, settings.webhook_host, settings.webhook_port)
    async with receiver:
        log.info("webhooks: received on %s for %s", receiver.url, settings.webhook_public_url)
        yield


def stop_on_signals(bot: VideoBot) -> None:
    """SIGTERM/SIGINT close the bot cleanly: no new commands, writes finish, sessions close."""
    loop = asyncio.get_running_loop()
    closing: set[asyncio.Task[None]] = set()

    def request_stop(name: str) -> None:
        log.info("%s received: shutting down", name)
        task = loop.create_task(bot.close())
        closing.add(task)  # keep a reference until it is done
        task.add_done_callback(closing.discard)

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, request_stop, sig.name)
