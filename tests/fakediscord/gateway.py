"""The gateway websocket: HELLO, IDENTIFY/READY, GUILD_CREATE, heartbeats, RESUME and dispatches.

One ``GatewayConnection`` per websocket; its ``GatewaySession`` (created by IDENTIFY, taken
over by RESUME) numbers the dispatches and keeps them for replay. A session belongs to one
shard: IDENTIFY's ``"shard": [shard_id, shard_count]`` (none = shard 0 of 1) is checked
against the fake's ``shard_count`` (4010 Invalid Shard, 4011 Sharding Required) and READY /
GUILD_CREATE list only the guilds of that shard. Which connection gets which event is decided
in connections.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from .connections import ConnectionsMixin

log = logging.getLogger(__name__)

OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_PRESENCE = 3
OP_VOICE_STATE = 4
OP_RESUME = 6
OP_RECONNECT = 7
OP_REQUEST_MEMBERS = 8
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11

INTENT_GUILDS = 1 << 0
INTENT_MEMBERS = 1 << 1
INTENT_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DM_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_MEMBERS | INTENT_PRESENCES | INTENT_MESSAGE_CONTENT

# Only kept so a RESUME can replay what a dropped connection missed.
_REPLAY_LIMIT = 1000

CLOSE_INVALID_SHARD = 4010
CLOSE_SHARDING_REQUIRED = 4011
# A client closing with these ends its session for good (Discord: the bot goes offline).
_FINAL_CLOSE_CODES = (1000, 1001)


def _zstd_compressor() -> Callable[[bytes], bytes] | None:
    """Per-message zstd-stream frames, when the same zstd library discord.py would use exists."""
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError:
        try:
            from compression import zstd  # type: ignore[import-not-found]
        except ImportError:
            return None
        comp = zstd.ZstdCompressor()
        return lambda data: comp.compress(data, mode=zstd.ZstdCompressor.FLUSH_BLOCK)
    cobj = zstandard.ZstdCompressor().compressobj()
    return lambda data: cobj.compress(data) + cobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)


@dataclass
class GatewaySession:
    id: str
    intents: int
    identify: dict[str, Any]
    seq: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)
    connection: GatewayConnection | None = None
    shard_id: int = 0
    shard_count: int = 1

    def record(self, event: str, data: Any) -> dict[str, Any]:
        """Number a dispatch and keep it for a RESUME's replay."""
        self.seq += 1
        payload = {"op": OP_DISPATCH, "t": event, "s": self.seq, "d": data}
        self.sent.append(payload)
        del self.sent[:-_REPLAY_LIMIT]
        return payload


def parse_shard(value: Any) -> tuple[int, int] | None:
    """IDENTIFY's ``shard`` as (shard_id, shard_count); none is shard 0 of 1; malformed: None."""
    if value is None:
        return 0, 1
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return int(value[0]), int(value[1])
    return None


class GatewayConnection:
    """One websocket from a bot. Messages from the fake are JSON, compressed as the URL asked."""

    def __init__(
        self, fake: ConnectionsMixin, ws: web.WebSocketResponse, compress: str | None
    ) -> None:
        self.fake = fake
        self.ws = ws
        self.compress_mode = compress
        self.session: GatewaySession | None = None
        self.ready = asyncio.Event()
        self.heartbeats = 0
        self.received: list[dict[str, Any]] = []
        self.closed_by_fake = False
        self._fake_close_code: int | None = None
        self._send_lock = asyncio.Lock()
        self._compress: Callable[[bytes], bytes] | None = None
        if compress == "zlib-stream":
            zobj = zlib.compressobj()
            # One zlib context for the whole connection, flushed per message, is what
            # discord.py's decompressor expects (it waits for the 00 00 ff ff suffix).
            self._compress = lambda data: zobj.compress(data) + zobj.flush(zlib.Z_SYNC_FLUSH)
        elif compress == "zstd-stream":
            # Without a zstd library plain text frames still work: discord.py only
            # decompresses binary frames.
            self._compress = _zstd_compressor()

    @property
    def closed(self) -> bool:
        return self.ws.closed

    @property
    def shard_id(self) -> int | None:
        """The shard this connection identified (or resumed) as; None before that."""
        return self.session.shard_id if self.session is not None else None

    @property
    def close_code(self) -> int | None:
        """Why the connection ended: the fake's code when it closed first, else the bot's."""
        return self._fake_close_code if self.closed_by_fake else self.ws.close_code

    @property
    def said_goodbye(self) -> bool:
        """The bot closed with 1000/1001: Discord ends the session (the app goes offline).

        Known as soon as the bot's close frame is read, i.e. before its ``close()`` returns.
        """
        return not self.closed_by_fake and self.ws.close_code in _FINAL_CLOSE_CODES

    async def send(self, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload, separators=(",", ":"))
        async with self._send_lock:
            if self.ws.closed:
                return
            try:
                if self._compress is not None:
                    await self.ws.send_bytes(self._compress(raw.encode()))
                else:
                    await self.ws.send_str(raw)
            except ConnectionError:
                log.debug("gateway send on a closing socket dropped")

    async def dispatch(self, event: str, data: Any) -> None:
        session = self.session
        if session is None:
            raise RuntimeError("dispatch before IDENTIFY")
        payload = session.record(event, data)
        self.fake.gateway_events.append(payload)
        await self.send(payload)

    async def close(self, code: int = 4000) -> None:
        if not self.closed_by_fake and not self.ws.closed:
            self.closed_by_fake = True
            self._fake_close_code = code
        await self.ws.close(code=code, message=b"fake discord closed the connection")

    async def run(self) -> None:
        await self.send(
            {
                "op": OP_HELLO,
                "d": {"heartbeat_interval": self.fake.heartbeat_interval_ms},
                "s": None,
                "t": None,
            }
        )
        try:
            await self._receive()
        finally:
            session = self.session
            if session is not None and session.connection is self and self.said_goodbye:
                # The bot said goodbye: Discord invalidates the session, nothing is buffered.
                self.fake.gateway_sessions.pop(session.id, None)

    async def _receive(self) -> None:
        async for msg in self.ws:
            if msg.type is WSMsgType.TEXT:
                try:
                    payload = json.loads(msg.data)
                except ValueError:
                    await self.close(4002)  # decode error
                    return
                self.received.append(payload)
                await self._handle(payload)
            elif msg.type is WSMsgType.BINARY:
                await self.close(4002)
                return
            elif msg.type is WSMsgType.ERROR:
                return

    async def _handle(self, payload: dict[str, Any]) -> None:
        op = payload.get("op")
        data = payload.get("d")
        if op == OP_HEARTBEAT:
            self.heartbeats += 1
            if self.fake.ack_heartbeats:
                await self.send({"op": OP_HEARTBEAT_ACK, "d": None, "s": None, "t": None})
            self.fake._notify()
        elif op == OP_IDENTIFY:
            await self._identify(data or {})
        elif op == OP_RESUME:
            await self._resume(data or {})
        elif op == OP_REQUEST_MEMBERS:
            await self._request_members(data or {})
        elif op in (OP_PRESENCE, OP_VOICE_STATE):
            self.fake.presence_updates.append(data)
        else:
            await self.close(4001)  # unknown opcode

    async def _identify(self, data: dict[str, Any]) -> None:
        if self.session is not None:
            await self.close(4005)  # already authenticated
            return
        if data.get("token") != self.fake.token:
            await self.close(4004)  # authentication failed
            return
        intents = int(data.get("intents", 0))
        if intents & PRIVILEGED_INTENTS & ~self.fake.allowed_privileged_intents:
            await self.close(4014)  # disallowed intents
            return
        shard = parse_shard(data.get("shard"))
        if shard is None or not 0 <= shard[0] < shard[1]:
            await self.close(CLOSE_INVALID_SHARD)
            return
        shard_id, shard_count = shard
        if shard_count < self.fake.shard_count:
            # Discord: "the session would have handled too many guilds".
            await self.close(CLOSE_SHARDING_REQUIRED)
            return
        if shard_count > self.fake.shard_count:
            # Real Discord accepts more shards than it recommends; the fake routes guilds
            # with its one shard_count, so a different count is an invalid shard here.
            await self.close(CLOSE_INVALID_SHARD)
            return
        self.fake.identifies += 1
        session = GatewaySession(
            id=secrets.token_hex(16),
            intents=intents,
            identify=data,
            shard_id=shard_id,
            shard_count=shard_count,
        )
        session.connection = self
        self.session = session
        self.fake.gateway_sessions[session.id] = session
        guilds = [g for g in self.fake.guilds.values() if self.fake.shard_of(g.id) == shard_id]
        ready = {
            "v": 10,
            "user": self.fake.bot_user_payload(),
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "resume_gateway_url": self.fake.gateway_url,
            "session_type": "normal",
            "application": {
                "id": str(self.fake.application_id),
                "flags": self.fake.application_flags,
            },
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "auth": {},
        }
        shard = data.get("shard")
        if shard is not None:
            ready["shard"] = shard
        await self.dispatch("READY", ready)
        for guild in guilds:
            if not guild.unavailable:
                await self.dispatch("GUILD_CREATE", self.fake.guild_create_payload(guild, intents))
        self.ready.set()
        self.fake._gateway_ready(self)

    async def _resume(self, data: dict[str, Any]) -> None:
        session = self.fake.gateway_sessions.get(str(data.get("session_id")))
        if data.get("token") != self.fake.token or session is None or not self.fake.allow_resume:
            await self.send({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        old = session.connection
        if old is not None and old is not self and not old.closed:
            await old.close(4000)
        session.connection = self
        self.session = session
        last = int(data.get("seq") or 0)
        for missed in [p for p in session.sent if p["s"] > last]:
            await self.send(missed)
        await self.dispatch("RESUMED", {})
        self.ready.set()
        self.fake.resumes += 1
        self.fake._gateway_ready(self)

    async def _request_members(self, data: dict[str, Any]) -> None:
        guild_ids = data.get("guild_id")
        if not isinstance(guild_ids, list):
            guild_ids = [guild_ids]
        for gid in guild_ids:
            guild = self.fake.guilds.get(int(gid))
            if guild is None or self.fake.shard_of(guild.id) != self.shard_id:
                continue
            chunk: dict[str, Any] = {
                "guild_id": str(guild.id),
                "members": [self.fake.member_payload(m) for m in guild.members.values()],
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
            }
            if data.get("nonce") is not None:
                chunk["nonce"] = data["nonce"]
            await self.dispatch("GUILD_MEMBERS_CHUNK", chunk)
