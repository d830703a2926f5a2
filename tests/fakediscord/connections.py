"""Driver side of the gateway: the live connections, and which of them gets an event.

gateway.py speaks the websocket protocol of one connection; this mixin is what a test sees:
``connection``, ``wait_ready``, ``dispatch``, ``flush``, ``close_gateway``, ``send_reconnect``,
``invalidate_session``, plus the ``/gateway`` and ``/gateway/bot`` routes and the payloads
READY / GUILD_CREATE are built from.

Shards: a guild's events go to shard ``(guild_id >> 22) % shard_count`` (DMs: shard 0), i.e.
to the newest open connection identified as that shard; with none, to the shard's newest
session that could still RESUME (replayed then, as Discord buffers); with neither, nowhere:
the app is offline for that shard (``_deliver`` says so, invoke.py records the interaction as
undelivered). Sync driver code (``add_channel`` …) fires its events with ``_dispatch_later``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
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
    _background: set[asyncio.Task[Any]]

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

    # ------------------------------------------------------------------ shards

    def shard_of(self, guild_id: int) -> int:
        """The shard Discord sends a guild's events to: ``(guild_id >> 22) % shard_count``."""
        return (int(guild_id) >> 22) % self.shard_count

    def _event_shard(self, guild_id: int | None) -> int:
        return 0 if guild_id is None else self.shard_of(guild_id)  # DMs go to shard 0

    def _live_connection(self, shard_id: int, *, ready: bool = True) -> GatewayConnection | None:
        """The newest open connection identified (or resumed) as ``shard_id``."""
        for conn in reversed(self.gateway_connections):
            if conn.closed or conn.shard_id != shard_id:
                continue
            if conn.ready.is_set() or not ready:
                return conn
        return None

    def _target(self, shard_id: int) -> GatewaySession | None:
        """Where an event of ``shard_id`` goes: the session of the newest open connection of
        the shard; else the newest session of the shard that could still RESUME (the event waits
        there, as Discord buffers for a dropped connection); else None: the app is offline."""
        conn = self._live_connection(shard_id, ready=False)
        if conn is not None:
            return conn.session
        if self.allow_resume:
            for session in reversed(list(self.gateway_sessions.values())):
                ended = session.connection is not None and session.connection.said_goodbye
                if session.shard_id == shard_id and not ended:
                    return session
        return None

    async def _deliver(
        self, shard_id: int, event: str, data: Any | Callable[[int], Any], *, timeout: float = 5.0
    ) -> bool:
        """Send an event to whoever holds ``shard_id``; False when nobody does.

        ``data`` may be a function of the session's intents (None from it: not sent).
        """
        session = self._target(shard_id)
        if session is None:
            return False
        conn = session.connection
        if conn is not None and not conn.closed and not conn.ready.is_set():
            # Identifying or resuming: READY / the replay go first.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conn.ready.wait(), timeout)
        payload = data(session.intents) if callable(data) else data
        if payload is None:
            return True
        if conn is not None and not conn.closed and conn.session is session:
            await conn.dispatch(event, payload)
        else:
            self.gateway_events.append(session.record(event, payload))
        return True

    def _dispatch_later(
        self, guild_id: int | None, event: str, data: Any | Callable[[int], Any]
    ) -> None:
        """Fire a gateway event from sync driver code (only when a loop and a listener are there)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        shard_id = self._event_shard(guild_id)
        if self._target(shard_id) is None:
            return
        task = loop.create_task(self._deliver(shard_id, event, data))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _gateway_broadcast_guild(self, guild: FakeGuild) -> None:
        self._dispatch_later(
            guild.id, "GUILD_CREATE", lambda intents: self.guild_create_payload(guild, intents)
        )

    # ------------------------------------------------------------------ the driver's handle

    @property
    def connection(self) -> GatewayConnection | None:
        """The live identified connection of shard 0 (the only one when not sharding)."""
        return self._live_connection(0)

    @property
    def connections(self) -> dict[int, GatewayConnection]:
        """Shard id → the live identified connection that gets the shard's events (the newest)."""
        found: dict[int, GatewayConnection] = {}
        for shard_id in range(self.shard_count):
            conn = self._live_connection(shard_id)
            if conn is not None:
                found[shard_id] = conn
        return found

    async def wait_ready(self, timeout: float = 5.0, *, shard_id: int = 0) -> GatewayConnection:
        """Wait until a bot has identified as ``shard_id`` (READY and every GUILD_CREATE sent)."""
        what = "a gateway connection" if self.shard_count == 1 else f"shard {shard_id}"
        await self.wait_until(lambda: self._live_connection(shard_id) is not None, timeout, what)
        conn = self._live_connection(shard_id)
        assert conn is not None
        return conn

    async def dispatch(
        self, event: str, data: Any, *, timeout: float = 5.0, shard_id: int | None = None
    ) -> None:
        """Send any gateway event to the bot: to ``shard_id``, by default the shard of
        ``data["guild_id"]`` (shard 0 without one). Waits for that shard to be connected."""
        if shard_id is None:
            guild_id = data.get("guild_id") if isinstance(data, dict) else None
            shard_id = self._event_shard(int(guild_id) if guild_id is not None else None)
        conn = await self.wait_ready(timeout, shard_id=shard_id)
        await conn.dispatch(event, data)

    async def flush(self, timeout: float = 5.0, *, shard_id: int | None = None) -> None:
        """Return once the bot has processed every gateway event sent so far (on ``shard_id``,
        by default on every connected shard).

        Sends opcode 1 (a heartbeat request) and waits for the bot's heartbeat: discord.py handles
        gateway messages in order, so its cache (guilds, channels, …) is up to date by then.
        """
        if self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
        live = self.connections
        conns = list(live.values()) if shard_id is None else [live.get(shard_id)]
        for conn in conns:
            if conn is not None:
                await self._flush_connection(conn, timeout)

    async def _flush_connection(self, conn: GatewayConnection, timeout: float) -> None:
        seen = conn.heartbeats
        await conn.send({"op": OP_HEARTBEAT, "d": None, "s": None, "t": None})
        await self.wait_until(
            lambda: conn.heartbeats > seen or conn.closed, timeout, "the bot's heartbeat"
        )

    async def close_gateway(self, code: int = 4000, *, shard_id: int | None = None) -> None:
        """Close the bot's websockets, of one shard or all (4000: discord.py resumes; 1000
        also reconnects in discord.py)."""
        for conn in list(self.gateway_connections):
            if not conn.closed and (shard_id is None or conn.shard_id == shard_id):
                await conn.close(code)

    async def send_reconnect(self, *, shard_id: int = 0) -> None:
        """Opcode 7: discord.py closes and resumes."""
        conn = await self.wait_ready(shard_id=shard_id)
        await conn.send({"op": OP_RECONNECT, "d": None, "s": None, "t": None})

    async def invalidate_session(self, resumable: bool = False, *, shard_id: int = 0) -> None:
        conn = await self.wait_ready(shard_id=shard_id)
        if not resumable and conn.session is not None:
            self.gateway_sessions.pop(conn.session.id, None)
        await conn.send({"op": OP_INVALID_SESSION, "d": resumable, "s": None, "t": None})

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
            "shards": self.shard_count,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 14400000,
                "max_concurrency": 1,
            },
        }
