"""The composition root: open every resource with `async with`, hand them to the bot, run.

Nothing is global: the settings, the database, the API client and (with
`NOVITA_SIMULATE=1`) the simulator are opened here, passed in, and closed in reverse order
however the bot stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

import discord

from bot.api import VideoAPI
from bot.discord_app import VideoBot
from bot.jobs import JobService
from bot.settings import Settings
from storage import Database

log = logging.getLogger(__name__)


@dataclass
class Core:
    """The platform-neutral core, open and ready."""

    settings: Settings
    db: Database
    api: VideoAPI
    service: JobService


@contextlib.asynccontextmanager
async def open_core(settings: Settings) -> AsyncIterator[Core]:
    """Database, video API client (or the simulator behind it) and job service."""
    async with contextlib.AsyncExitStack() as stack:
        base_url: str | None = None
        api_key: str | None = None
        if settings.novita_simulate:
            from bot.simulator import Simulator, SimulatorConfig

            config = SimulatorConfig(task_seconds=settings.simulate_seconds)
            simulator = await stack.enter_async_context(Simulator(config))
            base_url, api_key = simulator.base_url, simulator.api_key
            log.warning(
                "NOVITA_SIMULATE=1: videos come from the built-in simulator at %s; "
                "nothing is sent to Novita and nothing is spent",
                base_url,
            )
        db = await Database.open(settings.database_path)
        stack.push_async_callback(db.close)
        api = await stack.enter_async_context(
            VideoAPI.from_settings(settings, base_url=base_url, api_key=api_key)
        )
        yield Core(settings, db, api, JobService(db, api, settings))


def point_discord_at(settings: Settings) -> None:
    """Use another REST base for Discord (a test double or a proxy), when configured."""
    if settings.discord_rest_base is not None:
        discord.http.Route.BASE = settings.discord_rest_base


def build_bot(core: Core, *, force_sync: bool = False, sync_only: bool = False) -> VideoBot:
    return VideoBot(
        settings=core.settings,
        db=core.db,
        api=core.api,
        service=core.service,
        force_sync=force_sync or sync_only,
        sync_only=sync_only,
    )


async def run_bot(settings: Settings, *, force_sync: bool = False, sync_only: bool = False) -> None:
    point_discord_at(settings)
    async with open_core(settings) as core:
        bot = build_bot(core, force_sync=force_sync, sync_only=sync_only)
        async with bot:
            stop_on_signals(bot)
            token = settings.discord_token.get_secret_value()
            if sync_only:
                await bot.login(token)  # runs setup_hook, which syncs and starts nothing else
                return
            await bot.start(token)


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
