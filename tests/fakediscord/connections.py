"""Driver side of the gateway: the live connections, and which of them gets an event.

gateway.py speaks the websocket protocol of one connection; this mixin is what a test sees:
``connection``, ``wait_ready``, ``dispatch``, ``flush``, ``close_gateway``, ``send_reconnect``,
``invalidate_session``, plus the ``/gateway`` and ``/gateway/bot`` routes and the payloads
READY / GUILD_CREATE are built from. Sync driver code (``add_channel`` …) fires its gateway
events through ``_spawn``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, ClassVar

from aiohttp import web

from . import payloads
from .core import FakeCore, RouteSpec, route
from .gateway import (
    INTENT_MEMBERS,
    OP_HEARTBEAT,
    OP_INVALID_SESSION,
    OP_RECONNECT,
    GatewayConnection,
    GatewaySession,
)
from .models import FakeGuild, FakeMember, RecordedRequest


class ConnectionsMixin(FakeCore):
    """Gateway connections and sessions, and the driver's handle on them."""

    ROUTES: ClassVar[tuple[RouteSpec, ...]] = (
        route("GET", r"/gateway", "_r_gateway", auth=False),
        route("GET", r"/gateway/bot", "_r_gateway_bot"),
    )

    gateway_connections: list[GatewayConnection]  # every websocket ever opened, oldest first
    gateway_sessions: dict[str, GatewaySession]  # resumable sessions by id
    gateway_events: list[dict[str, Any]]  # every dispatch sent (op 0 payloads)
    presence_updates: list[Any]
    identifies: int
    resumes: int
    _background: set[asyncio.Task[None]]

    def _init_connections(self) -> None:
        self.gateway_connections = []
        self.gateway_sessions = {}
        self.gateway_events = []
        self.presence_updates = []
        self.identifies = 0
        self.resumes = 0
        self._background = set()

    # ------------------------------------------------------------------ payload helpers used by the gateway

    def bot_user_payload(self) -> dict[str, Any]:
        data = payloads.user(self.bot_user)
        data.update({"verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"})
        return data

    def member_payload(self, member: FakeMember) -> dict[str, Any]:
        return payloads.member(member)

    def guild_create_payload(self, guild: FakeGuild, intents: int = 0) -> dict[str, Any]:
        data = payloads.guild_create(guild)
        if not intents & INTENT_MEMBERS:
            # Without the privileged intent Discord only lists the bot itself.
            data["members"] = [payloads.member(guild.members[self.bot_user.id])]
        return data

    def _gateway_ready(self, conn: GatewayConnection) -> None:
        self._notify()

    # ------------------------------------------------------------------ the driver's handle

    @property
    def connection(self) -> GatewayConnection | None:
        """The live identified gateway connection that gets dispatches (the newest)."""
        for conn in reversed(self.gateway_connections):
            if not conn.closed and conn.ready.is_set():
                return conn
        return None

    async def wait_ready(self, timeout: float = 5.0) -> GatewayConnection:
        """Wait until a bot has identified (READY and every GUILD_CREATE sent)."""
        await self.wait_until(lambda: self.connection is not None, timeout, "a gateway connection")
        conn = self.connection
        assert conn is not None
        return conn

    async def dispatch(self, event: str, data: Any, *, timeout: float = 5.0) -> None:
        """Send any gateway event to the bot."""
        conn = await self.wait_ready(timeout)
        await conn.dispatch(event, data)

    async def flush(self, timeout: float = 5.0) -> None:
        """Return once the bot has processed every gateway event sent so far.

        Sends opcode 1 (a heartbeat request) and waits for the bot's heartbeat: discord.py handles
        gateway messages in order, so its cache (guilds, channels, …) is up to date by then.
        """
        if self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
        conn = self.connection
        if conn is None:
            return
        seen = conn.heartbeats
        await conn.send({"op": OP_HEARTBEAT, "d": None, "s": None, "t": None})
        await self.wait_until(
            lambda: conn.heartbeats > seen or conn.closed, timeout, "the bot's heartbeat"
        )

    async def close_gateway(self, code: int = 4000) -> None:
        """Close the bot's websocket (4000: it resumes; 1000 also reconnects in discord.py)."""
        for conn in list(self.gateway_connections):
            if not conn.closed:
                await conn.close(code)

    async def send_reconnect(self) -> None:
        """Opcode 7: discord.py closes and resumes."""
        conn = await self.wait_ready()
        await conn.send({"op": OP_RECONNECT, "d": None, "s": None, "t": None})

    async def invalidate_session(self, resumable: bool = False) -> None:
        conn = await self.wait_ready()
        if not resumable and conn.session is not None:
            self.gateway_sessions.pop(conn.session.id, None)
        await conn.send({"op": OP_INVALID_SESSION, "d": resumable, "s": None, "t": None})

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Fire a gateway dispatch from sync driver code (only when a loop and a bot are there)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            coro.close()
            return
        if self.connection is None:
            coro.close()
            return
        task = loop.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _dispatch_guild_event(self, guild_id: int, event: str, data: Any) -> None:
        conn = self.connection
        if conn is not None and guild_id in self.guilds:
            await conn.dispatch(event, data)

    def _gateway_broadcast_guild(self, guild: FakeGuild) -> None:
        self._spawn(self._dispatch_guild_create(guild))

    async def _dispatch_guild_create(self, guild: FakeGuild) -> None:
        conn = self.connection
        if conn is not None and conn.session is not None:
            await conn.dispatch(
                "GUILD_CREATE", self.guild_create_payload(guild, conn.session.intents)
            )

    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        if request.query.get("encoding", "json") != "json":
            await ws.close(code=4002, message=b"fake supports encoding=json only")
            return ws
        conn = GatewayConnection(self, ws, request.query.get("compress"))
        self.gateway_connections.append(conn)
        try:
            await conn.run()
        finally:
            self._notify()
        return ws

    # ------------------------------------------------------------------ REST: where the gateway is

    async def _r_gateway(self, rec: RecordedRequest) -> Any:
        return {"url": self.gateway_url}

    async def _r_gateway_bot(self, rec: RecordedRequest) -> Any:
        return {
            "url": self.gateway_url,
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 14400000,
                "max_concurrency": 1,
            },
        }
