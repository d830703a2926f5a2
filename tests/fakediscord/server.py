"""FakeDiscord: a loopback Discord (REST v10 + gateway) for end-to-end tests of a discord.py bot.

This module composes the class and runs it: the constructor, ``start``/``close`` of the aiohttp
server, patching discord.py to point at it, and ``running(bot)``. What the fake does lives in
one mixin per concern:

- core.py — configuration, fake clock, directory of users/guilds/channels, ``wait_until``
- connections.py — gateway connections (gateway.py speaks the protocol), ``dispatch``, ``flush``
- world.py — ``add_guild`` / ``add_member`` / …, permissions, guild/channel/user REST
- attachments.py — uploads, signed CDN links, refresh-urls, upload limits
- messages.py — the message store and channel message REST, mentions, MESSAGE_* events
- commands.py / options.py — synced application commands; interaction data built against them
- invoke.py — ``invoke_slash``, ``invoke_autocomplete``, ``click_button``, ``select``
- callbacks.py — the bot's interaction callbacks, followups and webhook edits
- faults.py — ``fail`` / ``drop_connection``; routes.py — recording and routing of requests
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from .callbacks import CallbacksMixin
from .errors import DiscordError
from .gateway import PRIVILEGED_INTENTS
from .models import DEFAULT_BOT_PERMISSIONS, FakeUser, SnowflakeFactory, permission_value
from .routes import MAX_UPLOAD_REQUEST, RoutesMixin

__all__ = ["DiscordError", "FakeDiscord"]


class FakeDiscord(CallbacksMixin, RoutesMixin):
    """A Discord on 127.0.0.1 that an unmodified discord.py client can log in to.

    Use as ``async with FakeDiscord() as fake:``. On entry it starts the server and (with
    ``patch_discord=True``) points discord.py at it: ``discord.http.Route.BASE`` and
    ``DiscordWebSocket.DEFAULT_GATEWAY`` (a plain ``commands.Bot`` never asks
    ``/gateway/bot``; it connects to the hard-coded default gateway). Both are restored on exit.
    """

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        application_id: int | None = None,
        bot_id: int | None = None,
        bot_name: str = "VideoBot",
        patch_discord: bool = True,
        heartbeat_interval_ms: int = 41250,
        interaction_deadline: float | None = 3.0,
        interaction_token_ttl: float = 15 * 60,
        attachment_ttl: float = 24 * 3600,
        nonce_window: float = 5 * 60,
        bot_permissions: Any = DEFAULT_BOT_PERMISSIONS,
        allowed_privileged_intents: int = PRIVILEGED_INTENTS,
        dispatch_message_events: bool = True,
        shard_count: int = 1,
    ) -> None:
        if shard_count < 1:
            raise ValueError("shard_count must be at least 1")
        self.time_offset = 0.0
        self.snowflake = SnowflakeFactory(self.now)
        self.token = token
        self.application_id = application_id or self.snowflake()
        self.application_flags = 0
        self.bot_user = FakeUser(bot_id or self.application_id, bot_name, bot=True)
        self.patch = patch_discord
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.shard_count = shard_count
        self.interaction_deadline = interaction_deadline
        self.interaction_token_ttl = interaction_token_ttl
        self.attachment_ttl = attachment_ttl
        self.nonce_window = nonce_window
        self.default_bot_permissions = permission_value(bot_permissions)
        self.allowed_privileged_intents = allowed_privileged_intents
        self.dispatch_message_events = dispatch_message_events
        self.ack_heartbeats = True
        self.allow_resume = True
        self.refresh_urls_enabled = True
        self.host = "127.0.0.1"
        self.port = 0  # the ephemeral port, once started

        self.users = {self.bot_user.id: self.bot_user}
        self.guilds = {}
        self.channels = {}
        self.dm_channels = {}
        self._changed = asyncio.Event()
        # Each concern sets up its own state (see the module of each mixin).
        self._init_connections()
        self._init_attachments()
        self._init_messages()
        self._init_commands()
        self._init_interactions()
        self._init_faults()
        self._init_routes()
        self._runner: web.AppRunner | None = None
        self._saved_patch: tuple[Any, Any] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_UPLOAD_REQUEST)
        app.router.add_get("/ws", self._handle_gateway)
        app.router.add_get("/ws/", self._handle_gateway)
        app.router.add_route("*", "/{tail:.*}", self._handle_http)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        if self.patch:
            self.patch_discord()

    async def close(self) -> None:
        self.clear_faults()  # held requests hang up now, instead of stalling the shutdown
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        for conn in list(self.gateway_connections):
            with contextlib.suppress(Exception):
                await conn.close(1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.unpatch_discord()

    def patch_discord(self) -> None:
        """Point discord.py's REST base and default gateway here (restored by ``unpatch_discord``)."""
        import discord.http
        import yarl
        from discord.gateway import DiscordWebSocket

        if self._saved_patch is None:
            self._saved_patch = (discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
        discord.http.Route.BASE = self.api_url
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url + "/")

    def unpatch_discord(self) -> None:
        if self._saved_patch is None:
            return
        import discord.http
        from discord.gateway import DiscordWebSocket

        discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._saved_patch
        self._saved_patch = None

    @contextlib.asynccontextmanager
    async def running(
        self, bot: Any, *, ready_timeout: float = 10.0, guild_ready_timeout: float | None = 0.05
    ) -> AsyncIterator[Any]:
        """Run ``bot.start(token)`` in a task until the block ends; yields once the bot is ready.

        discord.py waits ``guild_ready_timeout`` (2 s by default) after the last GUILD_CREATE
        before it fires ``on_ready``; the fake sends them all at once, so a tiny value is safe.
        """
        if guild_ready_timeout is not None:
            bot._connection.guild_ready_timeout = guild_ready_timeout
        task = asyncio.create_task(bot.start(self.token), name="fakediscord-bot")
        ready = asyncio.create_task(bot.wait_until_ready())
        try:
            done, _ = await asyncio.wait(
                {task, ready}, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if task in done:
                task.result()  # re-raise why the bot stopped
                raise RuntimeError("the bot stopped before it became ready")
            if ready not in done:
                raise TimeoutError("the bot did not become ready in time")
            yield bot
        finally:
            ready.cancel()
            if not bot.is_closed():
                await bot.close()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=5.0)
