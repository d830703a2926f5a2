"""FakeDiscord: a loopback Discord (REST v10 + gateway) for end-to-end tests of a discord.py bot."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import math
import mimetypes
import re
import secrets
import struct
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web

from . import payloads
from .gateway import (
    INTENT_DM_MESSAGES,
    INTENT_GUILD_MESSAGES,
    INTENT_MEMBERS,
    INTENT_MESSAGE_CONTENT,
    OP_HEARTBEAT,
    OP_INVALID_SESSION,
    OP_RECONNECT,
    PRIVILEGED_INTENTS,
    GatewayConnection,
    GatewaySession,
)
from .interactions import (
    ALLOWED_CALLBACKS,
    APPLICATION_COMMAND,
    ATTACHMENT,
    AUTOCOMPLETE,
    AUTOCOMPLETE_RESULT,
    BOOLEAN,
    CHANNEL,
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    INTEGER,
    MENTIONABLE,
    MESSAGE_COMPONENT,
    MODAL,
    NUMBER,
    ROLE,
    STRING,
    SUB_COMMAND,
    SUB_COMMAND_GROUP,
    UPDATE_MESSAGE,
    USER,
    AttachmentSpec,
    FakeInteraction,
    InteractionEvent,
    find_command,
    option_type_for,
)
from .models import (
    ALL_PERMISSIONS,
    ATTACH_FILES,
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_CODE_FOR_STATUS,
    DEFAULT_EVERYONE_PERMISSIONS,
    DM_UPLOAD_LIMIT,
    ERROR_CODES,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    MANAGE_MESSAGES,
    MENTION_EVERYONE,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    CommandSync,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
    Fault,
    Overwrite,
    RecordedRequest,
    SnowflakeFactory,
    StoredAttachment,
    StoredMessage,
    UploadedFile,
    permission_value,
)

log = logging.getLogger(__name__)

API_PREFIX = re.compile(r"^/api(?:/v\d+)?(?=/)")
USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")
COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")
MAX_UPLOAD_REQUEST = 512 * 1024 * 1024

UserRef = int | FakeUser | FakeMember
MessageRef = int | StoredMessage


class DiscordError(Exception):
    """Raised by a route handler; becomes Discord's ``{"message", "code"}`` error body."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str | None = None,
        errors: dict[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message or ERROR_CODES.get(code, (status, f"{status}"))[1]
        self.errors = errors
        super().__init__(f"{status} {code} {self.message}")


def _form_error(path: str, code: str, message: str) -> DiscordError:
    return DiscordError(400, 50035, "Invalid Form Body", payloads.form_error(path, code, message))


class _Dropped(Exception):
    """The fault asked us to hang up on the client."""


def _image_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return width, height
    return None


def _json_response(data: Any, status: int, headers: dict[str, str]) -> web.Response:
    # discord.py parses a body as JSON only when Content-Type is exactly "application/json";
    # aiohttp's json_response would append "; charset=utf-8" and turn every answer into a str.
    body = json.dumps(data, separators=(",", ":")).encode()
    return web.Response(
        body=body, status=status, headers={**headers, "Content-Type": "application/json"}
    )


def _guess_type(filename: str, declared: str | None) -> str | None:
    if declared and declared != "application/octet-stream":
        return declared
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or declared


class FakeDiscord:
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
    ) -> None:
        self.time_offset = 0.0
        self.snowflake = SnowflakeFactory(self.now)
        self.token = token
        self.application_id = application_id or self.snowflake()
        self.application_flags = 0
        self.bot_user = FakeUser(bot_id or self.application_id, bot_name, bot=True)
        self.patch = patch_discord
        self.heartbeat_interval_ms = heartbeat_interval_ms
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

        self.users: dict[int, FakeUser] = {self.bot_user.id: self.bot_user}
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, FakeChannel] = {}
        self.dm_channels: dict[int, FakeChannel] = {}  # by recipient id
        self._messages: dict[int, StoredMessage] = {}
        self._channel_messages: dict[int, list[int]] = {}
        self.attachments: dict[int, StoredAttachment] = {}
        self._attachment_generation: dict[int, int] = {}
        self._nonces: dict[tuple[int, str], tuple[float, int]] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self._interactions_by_token: dict[str, FakeInteraction] = {}

        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self.command_syncs: list[CommandSync] = []

        self.requests: list[RecordedRequest] = []
        self.unhandled: list[RecordedRequest] = []
        self.faults: list[Fault] = []

        self.gateway_connections: list[GatewayConnection] = []
        self.gateway_sessions: dict[str, GatewaySession] = {}
        self.gateway_events: list[dict[str, Any]] = []
        self.presence_updates: list[Any] = []
        self.identifies = 0
        self.resumes = 0

        self._background: set[asyncio.Task[None]] = set()
        self._secret = secrets.token_bytes(16)
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._saved_patch: tuple[Any, Any] | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self._routes = self._build_routes()

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

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

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

    # ------------------------------------------------------------------ time and waiting

    def now(self) -> float:
        return time.time() + self.time_offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock (expiry of links, nonces and interaction tokens) forward."""
        self.time_offset += seconds
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,
        what: str = "condition",
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=min(remaining, 0.25))

    async def wait_for_message(
        self,
        channel_id: int,
        predicate: Callable[[StoredMessage], bool] | None = None,
        *,
        timeout: float = 5.0,
    ) -> StoredMessage:
        """The first visible message in ``channel_id`` that satisfies ``predicate``."""

        def find() -> StoredMessage | None:
            for m in self.messages(channel_id):
                if predicate is None or predicate(m):
                    return m
            return None

        await self.wait_until(
            lambda: find() is not None, timeout, f"a message in channel {channel_id}"
        )
        found = find()
        assert found is not None
        return found

    async def wait_for_request(
        self,
        route: str,
        *,
        count: int = 1,
        timeout: float = 5.0,
    ) -> RecordedRequest:
        """The ``count``-th finished request matching ``route`` (e.g. ``"POST /channels/*/messages"``)."""

        def matching() -> list[RecordedRequest]:
            return [
                r for r in self.find_requests(route) if r.status is not None or r.fault is not None
            ]

        await self.wait_until(lambda: len(matching()) >= count, timeout, f"request {route!r}")
        return matching()[count - 1]

    # ------------------------------------------------------------------ world building

    def add_user(
        self,
        username: str | None = None,
        *,
        id: int | None = None,
        bot: bool = False,
        accepts_dms: bool = True,
        global_name: str | None = None,
    ) -> FakeUser:
        uid = id or self.snowflake()
        user = FakeUser(
            uid,
            username or f"user{len(self.users)}",
            global_name=global_name,
            bot=bot,
            accepts_dms=accepts_dms,
        )
        self.users[uid] = user
        return user

    def add_guild(
        self,
        name: str = "Test Guild",
        *,
        id: int | None = None,
        owner: UserRef | None = None,
        premium_tier: int = 0,
        attachment_size_limit: int | None = None,
        locale: str = "en-US",
        features: list[str] | None = None,
        everyone_permissions: Any = DEFAULT_EVERYONE_PERMISSIONS,
        bot_permissions: Any = None,
        channels: tuple[str, ...] = ("general",),
    ) -> FakeGuild:
        """A guild the bot is in, with @everyone, the bot's managed role, an owner and channels.

        ``attachment_size_limit`` overrides the upload limit derived from ``premium_tier``
        (Discord's interactions carry it; discord.py's ``Guild.filesize_limit`` keeps using the tier).
        """
        gid = id or self.snowflake()
        owner_user = (
            self._user(owner)
            if owner is not None
            else self.add_user(f"owner-{name.lower().replace(' ', '-')}")
        )
        guild = FakeGuild(
            gid,
            name,
            owner_user.id,
            premium_tier=premium_tier,
            locale=locale,
            features=list(features or []),
            attachment_size_limit=attachment_size_limit,
        )
        guild.roles[gid] = FakeRole(
            gid, gid, "@everyone", permission_value(everyone_permissions), position=0
        )
        bot_role = FakeRole(
            self.snowflake(),
            gid,
            self.bot_user.username,
            permission_value(bot_permissions)
            if bot_permissions is not None
            else self.default_bot_permissions,
            position=1,
            managed=True,
            bot_id=self.bot_user.id,
        )
        guild.roles[bot_role.id] = bot_role
        guild.members[self.bot_user.id] = FakeMember(
            self.bot_user, gid, [bot_role.id], joined_at=self.now()
        )
        guild.members[owner_user.id] = FakeMember(owner_user, gid, [], joined_at=self.now())
        self.guilds[gid] = guild
        for channel_name in channels:
            self.add_channel(gid, channel_name)
        self._gateway_broadcast_guild(guild)
        return guild

    def add_channel(
        self,
        guild_id: int,
        name: str = "general",
        *,
        id: int | None = None,
        type: int = 0,
        parent_id: int | None = None,
        topic: str | None = None,
        overwrites: list[Overwrite] | None = None,
        bot_allow: Any = 0,
        bot_deny: Any = 0,
    ) -> FakeChannel:
        """A channel; ``bot_deny`` (e.g. ``ATTACH_FILES`` or ``discord.Permissions(send_messages=True)``)
        adds a member overwrite for the bot, so the REST API refuses with 403/50013 like Discord."""
        guild = self.guilds[guild_id]
        cid = id or self.snowflake()
        channel = FakeChannel(
            cid,
            name,
            type=type,
            guild_id=guild_id,
            position=len(guild.channels),
            parent_id=parent_id,
            topic=topic,
            overwrites=list(overwrites or []),
        )
        allow, deny = permission_value(bot_allow), permission_value(bot_deny)
        if allow or deny:
            channel.overwrites.append(Overwrite(self.bot_user.id, 1, allow, deny))
        guild.channels[cid] = channel
        self.channels[cid] = channel
        self._spawn(
            self._dispatch_guild_event(guild_id, "CHANNEL_CREATE", payloads.channel(channel))
        )
        return channel

    def add_role(
        self,
        guild_id: int,
        name: str,
        permissions: Any = 0,
        *,
        id: int | None = None,
        mentionable: bool = False,
    ) -> FakeRole:
        guild = self.guilds[guild_id]
        role = FakeRole(
            id or self.snowflake(),
            guild_id,
            name,
            permission_value(permissions),
            position=len(guild.roles),
            mentionable=mentionable,
        )
        guild.roles[role.id] = role
        self._spawn(
            self._dispatch_guild_event(
                guild_id,
                "GUILD_ROLE_CREATE",
                {"guild_id": str(guild_id), "role": payloads.role(role)},
            )
        )
        return role

    def add_member(
        self,
        guild_id: int,
        user: UserRef | str | None = None,
        *,
        permissions: Any = None,
        roles: list[FakeRole | int] | None = None,
        nick: str | None = None,
        accepts_dms: bool | None = None,
    ) -> FakeMember:
        """Add a member. ``permissions`` (e.g. ``discord.Permissions(manage_guild=True)`` for a
        moderator) becomes a role of the member's own, so both ``interaction.permissions`` and the
        role-derived ``member.guild_permissions`` in discord.py's cache agree."""
        guild = self.guilds[guild_id]
        u = self.add_user(user) if user is None or isinstance(user, str) else self._user(user)
        if accepts_dms is not None:
            u.accepts_dms = accepts_dms
        role_ids = [r.id if isinstance(r, FakeRole) else int(r) for r in roles or []]
        if permissions is not None:
            role = self.add_role(guild_id, f"perms-{u.username}", permissions)
            role_ids.append(role.id)
        member = FakeMember(u, guild_id, role_ids, nick=nick, joined_at=self.now())
        guild.members[u.id] = member
        return member

    def set_permissions(self, guild_id: int, member: UserRef, permissions: Any) -> None:
        """Replace a member's own permission role (creating it when missing)."""
        guild = self.guilds[guild_id]
        m = guild.members[self._user(member).id]
        value = permission_value(permissions)
        for rid in m.role_ids:
            role = guild.roles.get(rid)
            if role is not None and role.name == f"perms-{m.user.username}":
                role.permissions = value
                return
        m.role_ids.append(self.add_role(guild_id, f"perms-{m.user.username}", value).id)

    def delete_channel(self, channel_id: int) -> None:
        """The channel disappears: REST answers 404/10003 and the bot gets CHANNEL_DELETE."""
        channel = self.channels[channel_id]
        channel.deleted = True
        if channel.guild_id is not None:
            self._spawn(
                self._dispatch_guild_event(
                    channel.guild_id, "CHANNEL_DELETE", payloads.channel(channel)
                )
            )

    def bot_member(self, guild_id: int) -> FakeMember:
        return self.guilds[guild_id].members[self.bot_user.id]

    def _user(self, ref: UserRef) -> FakeUser:
        if isinstance(ref, FakeUser):
            return ref
        if isinstance(ref, FakeMember):
            return ref.user
        user = self.users.get(int(ref))
        if user is None:
            raise LookupError(f"unknown user {ref}")
        return user

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

    # ------------------------------------------------------------------ messages (driver side)

    def message(self, message_id: int) -> StoredMessage | None:
        return self._messages.get(int(message_id))

    def messages(
        self, channel_id: int, *, include_deleted: bool = False, include_ephemeral: bool = False
    ) -> list[StoredMessage]:
        """Messages of a channel, oldest first; by default only what members would see."""
        found = []
        for mid in self._channel_messages.get(int(channel_id), []):
            m = self._messages[mid]
            if m.deleted and not include_deleted:
                continue
            if m.ephemeral and not include_ephemeral:
                continue
            found.append(m)
        return found

    def all_messages(self) -> list[StoredMessage]:
        return list(self._messages.values())

    def dm_channel(self, user: UserRef) -> FakeChannel | None:
        return self.dm_channels.get(self._user(user).id)

    def dms(self, user: UserRef) -> list[StoredMessage]:
        channel = self.dm_channel(user)
        return self.messages(channel.id) if channel is not None else []

    def add_message(
        self,
        channel_id: int,
        author: UserRef,
        content: str = "",
        *,
        embeds: list[dict[str, Any]] | None = None,
        components: list[dict[str, Any]] | None = None,
        nonce: str | None = None,
        dispatch: bool = True,
    ) -> StoredMessage:
        """Seed a message as if ``author`` had posted it (the bot's own, too: e.g. a job card
        left by a previous run)."""
        channel = self.channels[int(channel_id)]
        author_user = self._user(author)
        msg = StoredMessage(
            id=self.snowflake(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author_id=author_user.id,
            content=content,
            embeds=list(embeds or []),
            components=list(components or []),
            nonce=nonce,
            created_at=self.now(),
        )
        self._compute_mentions(msg, channel)
        self._store_message(msg)
        if nonce is not None:
            self._nonces[(author_user.id, str(nonce))] = (self.now(), msg.id)
        if dispatch:
            self._spawn(self._dispatch_message_event("MESSAGE_CREATE", msg))
        return msg

    def message_payload(
        self, msg: StoredMessage, *, include_guild_id: bool = False
    ) -> dict[str, Any]:
        author = self.users.get(msg.author_id) or FakeUser(msg.author_id, "deleted-user")
        mentions = [self.users[u] for u in msg.pinged_user_ids if u in self.users]
        referenced = None
        if msg.reply_to is not None:
            ref = self._messages.get(msg.reply_to)
            if ref is not None and not ref.deleted:
                ref_author = self.users.get(ref.author_id) or FakeUser(
                    ref.author_id, "deleted-user"
                )
                referenced = payloads.message(ref, author=ref_author, mentions=[])
        return payloads.message(
            msg,
            author=author,
            mentions=mentions,
            referenced=referenced,
            include_guild_id=include_guild_id,
        )

    # ------------------------------------------------------------------ attachments and the CDN

    def _sign(self, attachment_id: int, ex: int) -> str:
        gen = self._attachment_generation.get(attachment_id, 0)
        raw = f"{attachment_id}:{ex}:{gen}".encode()
        return hmac.new(self._secret, raw, hashlib.sha256).hexdigest()[:32]

    def _cdn_url(
        self, kind: str, owner_id: int, attachment_id: int, filename: str, *, media: bool = False
    ) -> tuple[str, float]:
        issued = int(self.now())
        ex = int(issued + self.attachment_ttl)
        host = self.base_url + ("/media" if media else "/cdn")
        quoted = urllib.parse.quote(filename)
        url = f"{host}/{kind}/{owner_id}/{attachment_id}/{quoted}?ex={ex:x}&is={issued:x}&hm={self._sign(attachment_id, ex)}&"
        return url, float(ex)

    def _new_attachment(
        self,
        kind: str,
        owner_id: int,
        *,
        filename: str,
        content_type: str | None,
        data: bytes,
        size: int | None = None,
        width: int | None = None,
        height: int | None = None,
        description: str | None = None,
        ephemeral: bool = False,
        duration_secs: float | None = None,
    ) -> StoredAttachment:
        aid = self.snowflake()
        url, expires = self._cdn_url(kind, owner_id, aid, filename)
        proxy_url, _ = self._cdn_url(kind, owner_id, aid, filename, media=True)
        if width is None and height is None:
            dims = _image_size(data)
            if dims is not None:
                width, height = dims
        att = StoredAttachment(
            id=aid,
            filename=filename,
            content_type=content_type,
            size=len(data) if size is None else size,
            data=data,
            url=url,
            proxy_url=proxy_url,
            expires_at=expires,
            width=width,
            height=height,
            description=description,
            ephemeral=ephemeral,
            duration_secs=duration_secs,
            kind=kind,
            owner_id=owner_id,
        )
        self.attachments[aid] = att
        return att

    def expire_attachment(self, attachment: StoredAttachment | int | str) -> None:
        """Every URL handed out so far for this attachment stops working (refresh still works)."""
        att = self._attachment(attachment)
        self._attachment_generation[att.id] = self._attachment_generation.get(att.id, 0) + 1
        att.expires_at = self.now() - 1

    def delete_attachment(self, attachment: StoredAttachment | int | str) -> None:
        """The attachment is gone for good: 404 on the CDN, and refresh-urls cannot revive it."""
        att = self._attachment(attachment)
        att.deleted = True

    def expire_all_attachments(self) -> None:
        for att in self.attachments.values():
            self.expire_attachment(att)

    def _attachment(self, ref: StoredAttachment | int | str) -> StoredAttachment:
        if isinstance(ref, StoredAttachment):
            return ref
        if isinstance(ref, str) and not ref.isdigit():
            aid = self._attachment_id_from_url(ref)
            if aid is None:
                raise LookupError(f"not an attachment URL of this fake: {ref}")
            return self.attachments[aid]
        return self.attachments[int(ref)]

    def _attachment_id_from_url(self, url: str) -> int | None:
        m = re.search(r"/(?:cdn|media)/(?:ephemeral-)?attachments/\d+/(\d+)/", url)
        return int(m.group(1)) if m else None

    # ------------------------------------------------------------------ requests and faults

    def find_requests(self, route: str) -> list[RecordedRequest]:
        """Recorded requests whose ``"METHOD /path"`` matches the fnmatch pattern ``route``."""
        probe = Fault(route, 0, 0, "")
        probe.times = None
        return [r for r in self.requests if probe.matches(r)]

    def fail(
        self,
        route: str,
        status: int | None = None,
        *,
        code: int | None = None,
        message: str | None = None,
        times: int | None = 1,
        retry_after: float = 0.01,
        is_global: bool = False,
        delay: float = 0.0,
        when: Callable[[RecordedRequest], bool] | None = None,
    ) -> Fault:
        """Answer matching requests with an error, ``times`` times (``None``: until cancelled).

        ``route`` is ``"METHOD /path-pattern"`` over the API path without ``/api/v10`` (``*`` spans
        ``/``), e.g. ``"POST /channels/*/messages"``. Give ``status`` or a Discord ``code`` (the other
        is derived: 413→40005, 404→10003, 403→50013, 50007→403, …). For 429 the body carries
        ``retry_after`` and the headers Discord sends (incl. ``Via``, without which discord.py
        takes a 429 for a Cloudflare ban and does not retry).

        discord.py retries 500/502/504/524 itself up to 5 times sleeping 1, 3, 5, 7 s; a 503
        is raised at once (``DiscordServerError``) — use ``times=1`` with 500, or 503, to stay fast.
        """
        if status is None and code is None:
            raise ValueError("give a status or a code")
        if status is None:
            assert code is not None
            status = ERROR_CODES.get(code, (400, ""))[0]
        if code is None:
            code = (
                0 if status in (429,) or status >= 500 else DEFAULT_CODE_FOR_STATUS.get(status, 0)
            )
        if message is None:
            if status == 429:
                message = "You are being rate limited."
            elif status >= 500 and code == 0:
                message = f"{status}: {'Internal Server Error' if status == 500 else 'Service Unavailable'}"
            else:
                message = ERROR_CODES.get(code, (status, f"{status}: error"))[1]
        fault = Fault(
            route,
            status,
            code,
            message,
            times=times,
            retry_after=retry_after,
            is_global=is_global,
            delay=delay,
            when=when,
        )
        self.faults.append(fault)
        return fault

    def drop_connection(
        self,
        route: str,
        *,
        times: int | None = 1,
        accept: bool = True,
        when: Callable[[RecordedRequest], bool] | None = None,
    ) -> Fault:
        """Hang up instead of answering matching requests. With ``accept=True`` the request takes
        effect first (the message is posted) — a crash during an upload that Discord received."""
        fault = Fault(
            route, 0, 0, "connection dropped", times=times, drop=True, accept=accept, when=when
        )
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        for fault in self.faults:
            fault.cancel()
        self.faults.clear()

    def _match_fault(self, rec: RecordedRequest) -> Fault | None:
        for fault in self.faults:
            if fault.matches(rec):
                fault.hits += 1
                return fault
        return None

    # ------------------------------------------------------------------ gateway (driver side)

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

    async def _dispatch_message_event(self, event: str, msg: StoredMessage) -> None:
        conn = self.connection
        if (
            conn is None
            or conn.session is None
            or not self.dispatch_message_events
            or msg.ephemeral
        ):
            return
        intents = conn.session.intents
        channel = self.channels.get(msg.channel_id)
        if channel is None:
            return
        needed = INTENT_DM_MESSAGES if channel.is_dm else INTENT_GUILD_MESSAGES
        if not intents & needed:
            return
        if event == "MESSAGE_DELETE":
            data: dict[str, Any] = {"id": str(msg.id), "channel_id": str(msg.channel_id)}
            if msg.guild_id is not None:
                data["guild_id"] = str(msg.guild_id)
            await conn.dispatch(event, data)
            return
        data = self.message_payload(msg, include_guild_id=True)
        guild = self.guilds.get(msg.guild_id) if msg.guild_id is not None else None
        if guild is not None and msg.author_id in guild.members:
            data["member"] = payloads.member(guild.members[msg.author_id], with_user=False)
        # Without the privileged intent Discord blanks what others wrote (not DMs nor mentions).
        privileged_ok = (
            intents & INTENT_MESSAGE_CONTENT
            or msg.author_id == self.bot_user.id
            or channel.is_dm
            or self.bot_user.id in msg.pinged_user_ids
        )
        if not privileged_ok:
            data.update({"content": "", "embeds": [], "attachments": [], "components": []})
        await conn.dispatch(event, data)

    # ------------------------------------------------------------------ HTTP plumbing

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

    async def _read_body(self, request: web.Request) -> tuple[Any, list[UploadedFile]]:
        ctype = request.content_type
        files: list[UploadedFile] = []
        if ctype.startswith("multipart/"):
            body: Any = None
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not hasattr(part, "read"):
                    continue
                name = part.name or ""  # type: ignore[union-attr]
                if name == "payload_json":
                    body = json.loads(await part.text())  # type: ignore[union-attr]
                elif part.filename is not None:  # type: ignore[union-attr]
                    data = bytes(await part.read(decode=False))  # type: ignore[union-attr]
                    files.append(
                        UploadedFile(
                            name,
                            part.filename,  # type: ignore[union-attr]
                            part.headers.get("Content-Type", "application/octet-stream"),
                            data,
                        )
                    )
                else:
                    text = await part.text()  # type: ignore[union-attr]
                    if body is None:
                        body = {}
                    if isinstance(body, dict):
                        body[name] = text
            return body, files
        raw = await request.read()
        if not raw:
            return None, files
        try:
            return json.loads(raw), files
        except ValueError:
            return raw.decode(errors="replace"), files

    def _headers(self, extra: dict[str, str] | None = None, bucket: str = "fake") -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": "50",
            "X-RateLimit-Remaining": "49",
            "X-RateLimit-Reset": f"{time.time() + 60:.3f}",
            "X-RateLimit-Reset-After": "60.000",
            "X-RateLimit-Bucket": bucket,
            "Via": "1.1 google",
        }
        if extra:
            headers.update(extra)
        return headers

    def _json(
        self, rec: RecordedRequest, data: Any, status: int = 200, bucket: str = "fake"
    ) -> web.Response:
        rec.response = data
        if data is None:
            return web.Response(status=204, headers=self._headers(bucket=bucket))
        return _json_response(data, status, self._headers(bucket=bucket))

    def _error_response(self, rec: RecordedRequest, err: DiscordError) -> web.Response:
        body = payloads.error(err.code, err.message, err.errors)
        rec.response = body
        return _json_response(body, err.status, self._headers())

    def _fault_response(self, rec: RecordedRequest, fault: Fault) -> web.Response:
        if fault.status == 429:
            body: dict[str, Any] = {
                "message": fault.message,
                "retry_after": fault.retry_after,
                "global": fault.is_global,
                "code": fault.code,
            }
            headers = self._headers(
                {
                    "Retry-After": str(max(1, math.ceil(fault.retry_after))),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{time.time() + fault.retry_after:.3f}",
                    "X-RateLimit-Reset-After": f"{fault.retry_after:.3f}",
                    "X-RateLimit-Scope": "global" if fault.is_global else "user",
                }
            )
            if fault.is_global:
                headers["X-RateLimit-Global"] = "true"
            rec.response = body
            return _json_response(body, 429, headers)
        return self._error_response(rec, DiscordError(fault.status, fault.code, fault.message))

    async def _handle_http(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.path
        match = API_PREFIX.match(raw_path)
        path = raw_path[match.end() :] if match else raw_path
        is_api = match is not None
        headers = {
            k: ("<redacted>" if k.lower() == "authorization" else v)
            for k, v in request.headers.items()
        }
        body, files = await self._read_body(request)
        rec = RecordedRequest(
            request.method, path, dict(request.query), headers, body, files, at=self.now()
        )
        self.requests.append(rec)
        response: web.StreamResponse
        try:
            fault = self._match_fault(rec)
            if fault is not None:
                rec.fault = fault
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.drop:
                    if fault.accept:
                        with contextlib.suppress(DiscordError):
                            await self._route(rec, request, is_api)
                    raise _Dropped
                response = self._fault_response(rec, fault)
            else:
                try:
                    response = await self._route(rec, request, is_api)
                except DiscordError as err:
                    response = self._error_response(rec, err)
            rec.status = response.status
            return response
        except _Dropped:
            transport = request.transport
            if transport is not None:
                transport.abort()
            # Nothing reaches the client after abort(); aiohttp just discards this.
            return web.Response(status=500)
        finally:
            self._notify()

    async def _route(
        self, rec: RecordedRequest, request: web.Request, is_api: bool
    ) -> web.StreamResponse:
        if not is_api:
            if rec.method == "GET" and (
                rec.path.startswith("/cdn/") or rec.path.startswith("/media/")
            ):
                return await self._cdn(rec, request)
            self.unhandled.append(rec)
            raise DiscordError(404, 0, "404: Not Found")
        for method, pattern, handler, needs_auth in self._routes:
            if method != rec.method:
                continue
            m = pattern.match(rec.path)
            if m is None:
                continue
            if needs_auth and request.headers.get("Authorization") != f"Bot {self.token}":
                raise DiscordError(401, 0, "401: Unauthorized")
            result = await handler(rec, **m.groupdict())
            if isinstance(result, web.StreamResponse):
                return result
            bucket = hashlib.sha1(f"{method} {pattern.pattern}".encode()).hexdigest()[:16]
            return self._json(rec, result, bucket=bucket)
        self.unhandled.append(rec)
        log.warning("fake discord has no route for %s %s", rec.method, rec.path)
        raise DiscordError(404, 0, "404: Not Found")

    def _build_routes(
        self,
    ) -> list[tuple[str, re.Pattern[str], Callable[..., Awaitable[Any]], bool]]:
        sf = r"(?P<{}>\d+)"
        table: list[tuple[str, str, Callable[..., Awaitable[Any]], bool]] = [
            ("GET", r"/gateway", self._r_gateway, False),
            ("GET", r"/gateway/bot", self._r_gateway_bot, True),
            ("GET", r"/users/@me", self._r_me, True),
            ("GET", r"/oauth2/applications/@me", self._r_application, True),
            ("GET", r"/applications/@me", self._r_application, True),
            ("GET", rf"/users/{sf.format('user_id')}", self._r_get_user, True),
            ("POST", r"/users/@me/channels", self._r_open_dm, True),
            ("GET", rf"/applications/{sf.format('app_id')}/commands", self._r_get_commands, True),
            ("PUT", rf"/applications/{sf.format('app_id')}/commands", self._r_put_commands, True),
            ("POST", rf"/applications/{sf.format('app_id')}/commands", self._r_post_command, True),
            (
                "GET",
                rf"/applications/{sf.format('app_id')}/guilds/{sf.format('guild_id')}/commands",
                self._r_get_commands,
                True,
            ),
            (
                "PUT",
                rf"/applications/{sf.format('app_id')}/guilds/{sf.format('guild_id')}/commands",
                self._r_put_commands,
                True,
            ),
            (
                "POST",
                rf"/applications/{sf.format('app_id')}/guilds/{sf.format('guild_id')}/commands",
                self._r_post_command,
                True,
            ),
            ("GET", rf"/guilds/{sf.format('guild_id')}", self._r_get_guild, True),
            ("GET", rf"/guilds/{sf.format('guild_id')}/channels", self._r_get_guild_channels, True),
            ("GET", rf"/guilds/{sf.format('guild_id')}/roles", self._r_get_roles, True),
            (
                "GET",
                rf"/guilds/{sf.format('guild_id')}/members/{sf.format('user_id')}",
                self._r_get_member,
                True,
            ),
            ("GET", rf"/channels/{sf.format('channel_id')}", self._r_get_channel, True),
            ("POST", rf"/channels/{sf.format('channel_id')}/typing", self._r_typing, True),
            ("GET", rf"/channels/{sf.format('channel_id')}/messages", self._r_list_messages, True),
            (
                "POST",
                rf"/channels/{sf.format('channel_id')}/messages",
                self._r_create_message,
                True,
            ),
            (
                "GET",
                rf"/channels/{sf.format('channel_id')}/messages/{sf.format('message_id')}",
                self._r_get_message,
                True,
            ),
            (
                "PATCH",
                rf"/channels/{sf.format('channel_id')}/messages/{sf.format('message_id')}",
                self._r_edit_message,
                True,
            ),
            (
                "DELETE",
                rf"/channels/{sf.format('channel_id')}/messages/{sf.format('message_id')}",
                self._r_delete_message,
                True,
            ),
            ("POST", r"/attachments/refresh-urls", self._r_refresh_urls, True),
            (
                "POST",
                rf"/interactions/{sf.format('interaction_id')}/(?P<token>[^/]+)/callback",
                self._r_interaction_callback,
                False,
            ),
            ("POST", rf"/webhooks/{sf.format('app_id')}/(?P<token>[^/]+)", self._r_followup, False),
            (
                "GET",
                rf"/webhooks/{sf.format('app_id')}/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)",
                self._r_webhook_get,
                False,
            ),
            (
                "PATCH",
                rf"/webhooks/{sf.format('app_id')}/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)",
                self._r_webhook_edit,
                False,
            ),
            (
                "DELETE",
                rf"/webhooks/{sf.format('app_id')}/(?P<token>[^/]+)/messages/(?P<message_id>@original|\d+)",
                self._r_webhook_delete,
                False,
            ),
        ]
        return [(m, re.compile(f"^{p}$"), h, a) for m, p, h, a in table]

    # ------------------------------------------------------------------ REST: identity

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

    async def _r_me(self, rec: RecordedRequest) -> Any:
        return self.bot_user_payload()

    async def _r_application(self, rec: RecordedRequest) -> Any:
        owner = next(iter(u for u in self.users.values() if not u.bot), None) or self.add_user(
            "app-owner"
        )
        return {
            "id": str(self.application_id),
            "name": self.bot_user.username,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": self.application_flags,
            "owner": payloads.user(owner),
            "team": None,
            "bot": payloads.user(self.bot_user),
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "tags": [],
        }

    async def _r_get_user(self, rec: RecordedRequest, user_id: str) -> Any:
        user = self.users.get(int(user_id))
        if user is None:
            raise DiscordError(404, 10013)
        return payloads.user(user)

    async def _r_open_dm(self, rec: RecordedRequest) -> Any:
        body = rec.json if isinstance(rec.json, dict) else {}
        try:
            uid = int(body.get("recipient_id"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise _form_error(
                "recipient_id", "NUMBER_TYPE_COERCE", "Value is not snowflake."
            ) from None
        user = self.users.get(uid)
        if user is None:
            raise DiscordError(400, 50033)
        channel = self.dm_channels.get(uid)
        if channel is None:
            channel = FakeChannel(self.snowflake(), "", type=1, recipient_id=uid)
            self.dm_channels[uid] = channel
            self.channels[channel.id] = channel
        return payloads.channel(channel, recipients=[user])

    # ------------------------------------------------------------------ REST: guilds and channels

    def _guild(self, guild_id: str | int) -> FakeGuild:
        guild = self.guilds.get(int(guild_id))
        if guild is None:
            raise DiscordError(404, 10004)
        return guild

    def _channel(self, channel_id: str | int) -> FakeChannel:
        channel = self.channels.get(int(channel_id))
        if channel is None or channel.deleted:
            raise DiscordError(404, 10003)
        return channel

    def bot_permissions_in(self, channel: FakeChannel) -> int:
        if channel.guild_id is None:
            return ALL_PERMISSIONS
        return self.guilds[channel.guild_id].channel_permissions(self.bot_user.id, channel)

    def _require(self, channel: FakeChannel, needed: int) -> None:
        perms = self.bot_permissions_in(channel)
        if not perms & VIEW_CHANNEL:
            raise DiscordError(403, 50001)
        if perms & needed != needed:
            raise DiscordError(403, 50013)

    async def _r_get_guild(self, rec: RecordedRequest, guild_id: str) -> Any:
        guild = self._guild(guild_id)
        data = payloads.guild_base(guild)
        data["approximate_member_count"] = len(guild.members)
        return data

    async def _r_get_guild_channels(self, rec: RecordedRequest, guild_id: str) -> Any:
        guild = self._guild(guild_id)
        return [payloads.channel(c) for c in guild.channels.values() if not c.deleted]

    async def _r_get_roles(self, rec: RecordedRequest, guild_id: str) -> Any:
        return [payloads.role(r) for r in self._guild(guild_id).roles.values()]

    async def _r_get_member(self, rec: RecordedRequest, guild_id: str, user_id: str) -> Any:
        member = self._guild(guild_id).members.get(int(user_id))
        if member is None:
            raise DiscordError(404, 10007)
        return payloads.member(member)

    async def _r_get_channel(self, rec: RecordedRequest, channel_id: str) -> Any:
        channel = self._channel(channel_id)
        if channel.is_dm:
            assert channel.recipient_id is not None
            return payloads.channel(channel, recipients=[self.users[channel.recipient_id]])
        self._require(channel, 0)
        return payloads.channel(channel)

    async def _r_typing(self, rec: RecordedRequest, channel_id: str) -> Any:
        channel = self._channel(channel_id)
        if not channel.is_dm:
            self._require(channel, SEND_MESSAGES)
        return None

    # ------------------------------------------------------------------ REST: messages

    def upload_limit_for(self, channel: FakeChannel) -> int:
        if channel.guild_id is None:
            return DM_UPLOAD_LIMIT
        return self.guilds[channel.guild_id].upload_limit

    def _validate_message_body(
        self, body: dict[str, Any], files: list[UploadedFile], *, creating: bool
    ) -> None:
        content = body.get("content")
        if content is not None and not isinstance(content, str):
            raise _form_error("content", "BASE_TYPE_BAD_TYPE", "Must be a string.")
        if content and len(content) > 2000:
            raise _form_error("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
        embeds = body.get("embeds") or []
        if len(embeds) > 10:
            raise _form_error("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        total = 0
        limits = {"title": 256, "description": 4096}
        for i, embed in enumerate(embeds):
            for key, limit in limits.items():
                value = embed.get(key) or ""
                total += len(value)
                if len(value) > limit:
                    raise _form_error(
                        f"embeds.{i}.{key}",
                        "BASE_TYPE_MAX_LENGTH",
                        f"Must be {limit} or fewer in length.",
                    )
            fields = embed.get("fields") or []
            if len(fields) > 25:
                raise _form_error(
                    f"embeds.{i}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                )
            for j, fld in enumerate(fields):
                name, value = str(fld.get("name") or ""), str(fld.get("value") or "")
                if not name or len(name) > 256:
                    raise _form_error(
                        f"embeds.{i}.fields.{j}.name",
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 256 in length.",
                    )
                if not value or len(value) > 1024:
                    raise _form_error(
                        f"embeds.{i}.fields.{j}.value",
                        "BASE_TYPE_BAD_LENGTH",
                        "Must be between 1 and 1024 in length.",
                    )
                total += len(name) + len(value)
            footer = (embed.get("footer") or {}).get("text") or ""
            author = (embed.get("author") or {}).get("name") or ""
            if len(footer) > 2048:
                raise _form_error(
                    f"embeds.{i}.footer.text",
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 2048 or fewer in length.",
                )
            if len(author) > 256:
                raise _form_error(
                    f"embeds.{i}.author.name",
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 256 or fewer in length.",
                )
            total += len(footer) + len(author)
        if total > 6000:
            raise _form_error(
                "embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
            )
        nonce = body.get("nonce")
        if nonce is not None and len(str(nonce)) > 25:
            raise _form_error("nonce", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        self._validate_components(body.get("components") or [])
        am = body.get("allowed_mentions")
        if isinstance(am, dict):
            parse = am.get("parse") or []
            for kind in ("users", "roles"):
                if kind in parse and am.get(kind):
                    raise _form_error(
                        f"allowed_mentions.{kind}",
                        "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                        f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
                    )
        if creating:
            has_any = (
                content
                or embeds
                or files
                or body.get("components")
                or body.get("sticker_ids")
                or body.get("poll")
            )
            if not has_any:
                raise DiscordError(400, 50006)

    def _validate_components(self, components: list[dict[str, Any]]) -> None:
        for i, comp in enumerate(components):
            custom_id = comp.get("custom_id")
            if custom_id is not None and len(str(custom_id)) > 100:
                raise _form_error(
                    f"components.{i}.custom_id",
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 100 or fewer in length.",
                )
            label = comp.get("label")
            if label is not None and len(str(label)) > 80:
                raise _form_error(
                    f"components.{i}.label",
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 80 or fewer in length.",
                )
            if comp.get("type") == 1 and len(comp.get("components") or []) > 5:
                raise _form_error(
                    f"components.{i}.components",
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 5 or fewer in length.",
                )
            if isinstance(comp.get("components"), list):
                self._validate_components(comp["components"])

    def _check_sizes(
        self, channel: FakeChannel, files: list[UploadedFile], limit: int | None = None
    ) -> None:
        limit = self.upload_limit_for(channel) if limit is None else limit
        for f in files:
            if f.size > limit:
                raise DiscordError(413, 40005)

    def _attachments_from_upload(
        self,
        channel: FakeChannel,
        body: dict[str, Any],
        files: list[UploadedFile],
        existing: list[StoredAttachment] | None = None,
    ) -> list[StoredAttachment]:
        meta: dict[int, dict[str, Any]] = {}
        keep_ids: set[int] | None = None
        listed = body.get("attachments")
        if isinstance(listed, list):
            keep_ids = set()
            for entry in listed:
                try:
                    ident = int(entry.get("id"))
                except (TypeError, ValueError):
                    continue
                if existing and any(a.id == ident for a in existing):
                    keep_ids.add(ident)
                else:
                    meta[ident] = entry
        result = [a for a in existing or [] if keep_ids is None or a.id in keep_ids]
        for index, f in enumerate(files):
            m = re.match(r"^files\[(\d+)\]$", f.field)
            slot = int(m.group(1)) if m else index
            info = meta.get(slot, {})
            filename = str(info.get("filename") or f.filename)
            result.append(
                self._new_attachment(
                    "attachments",
                    channel.id,
                    filename=filename,
                    content_type=_guess_type(filename, f.content_type),
                    data=f.data,
                    description=info.get("description"),
                )
            )
        return result

    def _compute_mentions(self, msg: StoredMessage, channel: FakeChannel) -> None:
        """Who would really be pinged, honouring allowed_mentions as Discord does."""
        am = msg.allowed_mentions
        if am is None:
            parse = {"users", "roles", "everyone"}
            users_allowed: set[int] = set()
            roles_allowed: set[int] = set()
            replied_user = True
        else:
            parse = set(am.get("parse") or [])
            users_allowed = {int(u) for u in am.get("users") or []}
            roles_allowed = {int(r) for r in am.get("roles") or []}
            replied_user = bool(am.get("replied_user", False))
        pinged: list[int] = []
        for uid in (int(x) for x in USER_MENTION.findall(msg.content)):
            if ("users" in parse or uid in users_allowed) and uid not in pinged:
                pinged.append(uid)
        roles: list[int] = []
        guild = self.guilds.get(channel.guild_id) if channel.guild_id is not None else None
        for rid in (int(x) for x in ROLE_MENTION.findall(msg.content)):
            if (
                guild is not None
                and rid in guild.roles
                and ("roles" in parse or rid in roles_allowed)
            ):
                roles.append(rid)
        everyone = False
        if ("@everyone" in msg.content or "@here" in msg.content) and "everyone" in parse:
            everyone = guild is None or bool(
                guild.channel_permissions(msg.author_id, channel) & MENTION_EVERYONE
            )
        if msg.reply_to is not None and replied_user:
            ref = self._messages.get(msg.reply_to)
            if ref is not None and ref.author_id != msg.author_id and ref.author_id not in pinged:
                pinged.append(ref.author_id)
        msg.pinged_user_ids = pinged
        msg.pinged_role_ids = roles
        msg.pings_everyone = everyone

    def _store_message(self, msg: StoredMessage) -> None:
        self._messages[msg.id] = msg
        self._channel_messages.setdefault(msg.channel_id, []).append(msg.id)

    def _apply_reference(self, channel: FakeChannel, body: dict[str, Any]) -> dict[str, Any] | None:
        ref = body.get("message_reference")
        if not isinstance(ref, dict) or ref.get("message_id") is None:
            return None
        target = self._messages.get(int(ref["message_id"]))
        ref_channel = int(ref.get("channel_id") or channel.id)
        if target is None or target.deleted or target.channel_id != ref_channel or target.ephemeral:
            if ref.get("fail_if_not_exists", True):
                raise _form_error(
                    "message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                )
            return None
        out = {"type": 0, "message_id": str(target.id), "channel_id": str(target.channel_id)}
        if target.guild_id is not None:
            out["guild_id"] = str(target.guild_id)
        return out

    def _create_message(
        self,
        channel: FakeChannel,
        body: dict[str, Any],
        files: list[UploadedFile],
        *,
        author_id: int,
        extra_flags: int = 0,
        interaction: FakeInteraction | None = None,
        message_type: int | None = None,
        validate: bool = True,
    ) -> StoredMessage:
        if validate:
            self._validate_message_body(body, files, creating=True)
        reference = self._apply_reference(channel, body)
        flags = int(body.get("flags") or 0) | extra_flags
        msg = StoredMessage(
            id=self.snowflake(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author_id=author_id,
            content=body.get("content") or "",
            embeds=list(body.get("embeds") or []),
            components=list(body.get("components") or []),
            flags=flags,
            nonce=body.get("nonce"),
            tts=bool(body.get("tts", False)),
            message_reference=reference,
            allowed_mentions=body.get("allowed_mentions"),
            created_at=self.now(),
        )
        msg.type = message_type if message_type is not None else (19 if reference else 0)
        msg.attachments = self._attachments_from_upload(channel, body, files)
        if interaction is not None:
            msg.webhook_id = self.application_id
            msg.application_id = self.application_id
            msg.interaction_id = interaction.id
            msg.interaction_metadata = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": payloads.user(self.users[interaction.user_id]),
                "authorizing_integration_owners": (
                    {"0": str(interaction.guild_id)}
                    if interaction.guild_id
                    else {"1": str(interaction.user_id)}
                ),
            }
            if interaction.type == APPLICATION_COMMAND:
                msg.interaction_metadata["name"] = interaction.payload["data"]["name"]
                msg.interaction_metadata["command_type"] = 1
            if interaction.source_message_id is not None:
                msg.interaction_metadata["interacted_message_id"] = str(
                    interaction.source_message_id
                )
        self._compute_mentions(msg, channel)
        self._store_message(msg)
        self._spawn(self._dispatch_message_event("MESSAGE_CREATE", msg))
        return msg

    def _edit_message(
        self, msg: StoredMessage, body: dict[str, Any], files: list[UploadedFile]
    ) -> None:
        channel = self.channels[msg.channel_id]
        self._validate_message_body(body, files, creating=False)
        self._check_sizes(channel, files)
        msg.history.append(self.message_payload(msg))
        if "content" in body:
            msg.content = body["content"] or ""
        if "embeds" in body:
            msg.embeds = list(body["embeds"] or [])
        if "components" in body:
            msg.components = list(body["components"] or [])
        if "allowed_mentions" in body:
            msg.allowed_mentions = body["allowed_mentions"]
        if "flags" in body and body["flags"] is not None:
            # Only presentation flags may change on edit; ephemeral-ness is fixed at creation.
            keep = msg.flags & (FLAG_EPHEMERAL | (1 << 15))
            msg.flags = keep | (int(body["flags"]) & ~(FLAG_EPHEMERAL | FLAG_LOADING))
        msg.flags &= ~FLAG_LOADING
        if "attachments" in body or files:
            msg.attachments = self._attachments_from_upload(
                channel, body, files, existing=msg.attachments
            )
        msg.edited_at = self.now()
        self._compute_mentions(msg, channel)
        self._spawn(self._dispatch_message_event("MESSAGE_UPDATE", msg))

    def _require_send(self, channel: FakeChannel, files: list[UploadedFile]) -> None:
        if channel.is_dm:
            assert channel.recipient_id is not None
            if not self.users[channel.recipient_id].accepts_dms:
                raise DiscordError(403, 50007)
            return
        self._require(channel, SEND_MESSAGES | (ATTACH_FILES if files else 0))

    async def _r_create_message(self, rec: RecordedRequest, channel_id: str) -> Any:
        channel = self._channel(channel_id)
        body = rec.json if isinstance(rec.json, dict) else {}
        self._require_send(channel, rec.files)
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            seen = self._nonces.get((self.bot_user.id, str(nonce)))
            if seen is not None and self.now() - seen[0] <= self.nonce_window:
                existing = self._messages.get(seen[1])
                if existing is not None:
                    return self.message_payload(existing)
        self._check_sizes(channel, rec.files)
        msg = self._create_message(channel, body, rec.files, author_id=self.bot_user.id)
        if nonce is not None:
            self._nonces[(self.bot_user.id, str(nonce))] = (self.now(), msg.id)
        return self.message_payload(msg)

    def _channel_message(
        self, channel_id: str, message_id: str
    ) -> tuple[FakeChannel, StoredMessage]:
        channel = self._channel(channel_id)
        msg = self._messages.get(int(message_id))
        if msg is None or msg.deleted or msg.channel_id != channel.id or msg.ephemeral:
            raise DiscordError(404, 10008)
        return channel, msg

    async def _r_get_message(self, rec: RecordedRequest, channel_id: str, message_id: str) -> Any:
        channel, msg = self._channel_message(channel_id, message_id)
        if not channel.is_dm:
            self._require(channel, READ_MESSAGE_HISTORY)
        return self.message_payload(msg)

    async def _r_list_messages(self, rec: RecordedRequest, channel_id: str) -> Any:
        channel = self._channel(channel_id)
        if not channel.is_dm:
            self._require(channel, READ_MESSAGE_HISTORY)
        limit = max(1, min(100, int(rec.query.get("limit", 50))))
        visible = self.messages(channel.id)  # oldest first
        if "around" in rec.query:
            around = int(rec.query["around"])
            older = [m for m in visible if m.id <= around][-(limit // 2 + limit % 2) :]
            newer = [m for m in visible if m.id > around][: limit // 2]
            chosen = older + newer
        elif "before" in rec.query:
            before = int(rec.query["before"])
            chosen = [m for m in visible if m.id < before][-limit:]
        elif "after" in rec.query:
            after = int(rec.query["after"])
            chosen = [m for m in visible if m.id > after][:limit]
        else:
            chosen = visible[-limit:]
        return [self.message_payload(m) for m in reversed(chosen)]

    async def _r_edit_message(self, rec: RecordedRequest, channel_id: str, message_id: str) -> Any:
        channel, msg = self._channel_message(channel_id, message_id)
        if msg.author_id != self.bot_user.id:
            raise DiscordError(403, 50005)
        if not channel.is_dm:
            self._require(channel, ATTACH_FILES if rec.files else 0)
        self._edit_message(msg, rec.json if isinstance(rec.json, dict) else {}, rec.files)
        return self.message_payload(msg)

    async def _r_delete_message(
        self, rec: RecordedRequest, channel_id: str, message_id: str
    ) -> Any:
        channel, msg = self._channel_message(channel_id, message_id)
        if msg.author_id != self.bot_user.id and not channel.is_dm:
            self._require(channel, MANAGE_MESSAGES)
        msg.deleted = True
        self._spawn(self._dispatch_message_event("MESSAGE_DELETE", msg))
        return None

    async def _r_refresh_urls(self, rec: RecordedRequest) -> Any:
        body = rec.json if isinstance(rec.json, dict) else {}
        urls = body.get("attachment_urls")
        if not isinstance(urls, list) or not urls:
            raise _form_error("attachment_urls", "BASE_TYPE_REQUIRED", "This field is required")
        if len(urls) > 50:
            raise _form_error(
                "attachment_urls", "BASE_TYPE_MAX_LENGTH", "Must be 50 or fewer in length."
            )
        out = []
        for url in urls:
            aid = self._attachment_id_from_url(str(url))
            att = self.attachments.get(aid) if aid is not None else None
            refreshed = str(url)
            if att is not None and not att.deleted and self.refresh_urls_enabled:
                refreshed, att.expires_at = self._cdn_url(
                    att.kind, att.owner_id, att.id, att.filename
                )
                att.url = refreshed
            out.append({"original": url, "refreshed": refreshed})
        return {"refreshed_urls": out}

    async def _cdn(self, rec: RecordedRequest, request: web.Request) -> web.StreamResponse:
        gone = web.Response(status=404, text="This content is no longer available.")
        aid = self._attachment_id_from_url(rec.path + "/")
        att = self.attachments.get(aid) if aid is not None else None
        if att is None or att.deleted:
            rec.status = 404
            return gone
        try:
            ex = int(request.query.get("ex", ""), 16)
        except ValueError:
            return gone
        if (
            not hmac.compare_digest(request.query.get("hm", ""), self._sign(att.id, ex))
            or self.now() >= ex
        ):
            return gone
        att.downloads += 1
        return web.Response(
            body=att.data, content_type=att.content_type or "application/octet-stream"
        )

    # ------------------------------------------------------------------ REST: application commands

    def _validate_command(self, cmd: dict[str, Any], *, path: str) -> None:
        ctype = int(cmd.get("type", 1))
        name = cmd.get("name")
        if (
            not isinstance(name, str)
            or not COMMAND_NAME.match(name)
            or (ctype == 1 and name != name.lower())
        ):
            raise _form_error(
                f"{path}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
            )
        desc = cmd.get("description", "")
        if ctype == 1 and not (1 <= len(desc or "") <= 100):
            raise _form_error(
                f"{path}.description",
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )
        self._validate_options(cmd.get("options") or [], path=f"{path}.options")

    def _validate_options(self, options: list[dict[str, Any]], *, path: str) -> None:
        if len(options) > 25:
            raise _form_error(path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        names: set[str] = set()
        seen_optional = False
        for i, opt in enumerate(options):
            name = opt.get("name", "")
            if not COMMAND_NAME.match(name) or name != name.lower():
                raise _form_error(
                    f"{path}.{i}.name",
                    "APPLICATION_COMMAND_INVALID_NAME",
                    "Command name is invalid",
                )
            if name in names:
                raise _form_error(
                    f"{path}.{i}.name",
                    "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                    "Option name already exists",
                )
            names.add(name)
            if not (1 <= len(opt.get("description") or "") <= 100):
                raise _form_error(
                    f"{path}.{i}.description",
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                )
            otype = int(opt.get("type", 0))
            if otype in (SUB_COMMAND, SUB_COMMAND_GROUP):
                self._validate_options(opt.get("options") or [], path=f"{path}.{i}.options")
                continue
            if opt.get("required"):
                if seen_optional:
                    raise _form_error(
                        f"{path}.{i}.required",
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
            else:
                seen_optional = True
            if len(opt.get("choices") or []) > 25:
                raise _form_error(
                    f"{path}.{i}.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                )
            if opt.get("choices") and opt.get("autocomplete"):
                raise _form_error(
                    f"{path}.{i}.autocomplete",
                    "APPLICATION_COMMAND_AUTOCOMPLETE_INVALID",
                    "Autocomplete cannot be enabled on options with choices",
                )

    def _stored_command(
        self, cmd: dict[str, Any], guild_id: int | None, existing: list[dict[str, Any]]
    ) -> dict[str, Any]:
        ctype = int(cmd.get("type", 1))
        previous = find_command(existing, cmd["name"], ctype)
        dmp = cmd.get("default_member_permissions")
        stored: dict[str, Any] = {
            "id": previous["id"] if previous else str(self.snowflake()),
            "application_id": str(self.application_id),
            "version": str(self.snowflake()),
            "type": ctype,
            "name": cmd["name"],
            "name_localizations": cmd.get("name_localizations"),
            "description": cmd.get("description", ""),
            "description_localizations": cmd.get("description_localizations"),
            "options": cmd.get("options") or [],
            "default_member_permissions": None if dmp is None else str(dmp),
            "nsfw": bool(cmd.get("nsfw", False)),
            "contexts": cmd.get("contexts"),
            "integration_types": cmd.get("integration_types", [0]),
        }
        if guild_id is not None:
            stored["guild_id"] = str(guild_id)
        elif "dm_permission" in cmd:
            stored["dm_permission"] = cmd["dm_permission"]
        return stored

    def _check_app(self, app_id: str) -> None:
        if int(app_id) != self.application_id:
            raise DiscordError(403, 50001)

    async def _r_get_commands(
        self, rec: RecordedRequest, app_id: str, guild_id: str | None = None
    ) -> Any:
        self._check_app(app_id)
        if guild_id is not None:
            self._guild(guild_id)
            return self.guild_commands.get(int(guild_id), [])
        return self.global_commands

    async def _r_put_commands(
        self, rec: RecordedRequest, app_id: str, guild_id: str | None = None
    ) -> Any:
        self._check_app(app_id)
        body = rec.json
        if not isinstance(body, list):
            raise _form_error("_", "BASE_TYPE_ARRAY", "Must be an array.")
        seen: set[tuple[int, str]] = set()
        for i, cmd in enumerate(body):
            self._validate_command(cmd, path=str(i))
            key = (int(cmd.get("type", 1)), cmd["name"])
            if key in seen:
                raise _form_error(
                    f"{i}.name",
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    f"Application command names must be unique ({cmd['name']})",
                )
            seen.add(key)
        gid = int(guild_id) if guild_id is not None else None
        if gid is not None:
            self._guild(gid)
        existing = self.guild_commands.get(gid, []) if gid is not None else self.global_commands
        stored = [self._stored_command(cmd, gid, existing) for cmd in body]
        if gid is not None:
            self.guild_commands[gid] = stored
        else:
            self.global_commands = stored
        self.command_syncs.append(CommandSync(gid, body, self.now()))
        return stored

    async def _r_post_command(
        self, rec: RecordedRequest, app_id: str, guild_id: str | None = None
    ) -> Any:
        self._check_app(app_id)
        cmd = rec.json if isinstance(rec.json, dict) else {}
        self._validate_command(cmd, path="_")
        gid = int(guild_id) if guild_id is not None else None
        existing = (
            self.guild_commands.setdefault(gid, []) if gid is not None else self.global_commands
        )
        stored = self._stored_command(cmd, gid, existing)
        existing[:] = [c for c in existing if c["id"] != stored["id"]] + [stored]
        return stored

    # ------------------------------------------------------------------ interactions: sending

    def _member_of(self, guild: FakeGuild, user: UserRef) -> FakeMember:
        uid = self._user(user).id
        member = guild.members.get(uid)
        if member is None:
            raise LookupError(
                f"user {uid} is not a member of guild {guild.id}; use fake.add_member first"
            )
        return member

    def _base_interaction(
        self,
        itype: int,
        guild_id: int,
        channel_id: int,
        user: UserRef,
        data: dict[str, Any],
        *,
        locale: str = "en-US",
        message: StoredMessage | None = None,
    ) -> FakeInteraction:
        guild = self.guilds[int(guild_id)]
        channel = self.channels[int(channel_id)]
        if channel.guild_id != guild.id:
            raise LookupError(f"channel {channel_id} is not in guild {guild_id}")
        member = self._member_of(guild, user)
        iid = self.snowflake()
        token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48).replace("-", "x").replace("_", "y")
        member_perms = guild.channel_permissions(member.id, channel)
        channel_payload = payloads.channel(channel)
        channel_payload["permissions"] = str(member_perms)
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "data": data,
            "guild_id": str(guild.id),
            "guild": {
                "id": str(guild.id),
                "locale": guild.locale,
                "features": list(guild.features),
            },
            "channel_id": str(channel.id),
            "channel": channel_payload,
            "member": payloads.member(member, permissions=member_perms),
            "token": token,
            "version": 1,
            "app_permissions": str(self.bot_permissions_in(channel)),
            "locale": locale,
            "guild_locale": guild.locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "attachment_size_limit": guild.upload_limit,
        }
        if message is not None:
            payload["message"] = self.message_payload(message)
        inter = FakeInteraction(
            self,
            id=iid,
            token=token,
            type=itype,
            payload=payload,
            guild_id=guild.id,
            channel_id=channel.id,
            user_id=member.id,
            created_at=self.now(),
            source_message_id=message.id if message is not None else None,
        )
        self.interactions[iid] = inter
        self._interactions_by_token[token] = inter
        return inter

    def _command_schema(self, guild_id: int, name: str) -> tuple[dict[str, Any] | None, bool]:
        """(schema, is_guild_command) of a synced chat-input command."""
        cmd = find_command(self.guild_commands.get(guild_id, []), name)
        if cmd is not None:
            return cmd, True
        return find_command(self.global_commands, name), False

    def _command_data(
        self,
        guild_id: int,
        channel_id: int,
        command: str,
        subcommand: str | None,
        group: str | None,
        options: dict[str, Any],
        *,
        focused: str | None,
        validate: bool,
        command_guild_id: int | None,
    ) -> dict[str, Any]:
        parts = command.split()
        name = parts[0]
        path = parts[1:]
        if group is not None:
            path.append(group)
        if subcommand is not None:
            path.append(subcommand)
        schema, is_guild = self._command_schema(guild_id, name)
        if (
            schema is None
            and validate
            and (self.global_commands or self.guild_commands.get(guild_id))
        ):
            raise LookupError(
                f"/{name} is not registered with the fake (synced: "
                f"{[c['name'] for c in self.global_commands + self.guild_commands.get(guild_id, [])]})"
            )
        resolved: dict[str, dict[str, Any]] = {}
        node = schema
        chain: list[tuple[str, int]] = []
        for depth, part in enumerate(path):
            sub = None
            if node is not None:
                sub = next(
                    (
                        o
                        for o in node.get("options") or []
                        if o.get("name") == part
                        and o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP)
                    ),
                    None,
                )
                if sub is None and validate:
                    raise LookupError(f"/{command} has no subcommand {part!r}")
            if sub is not None:
                kind = int(sub["type"])
            else:
                kind = SUB_COMMAND_GROUP if depth < len(path) - 1 else SUB_COMMAND
            chain.append((part, kind))
            node = sub
        leaf_schema = (
            (node.get("options") if node is not None else None) if (schema is not None) else None
        )
        if (
            schema is not None
            and node is not None
            and any(
                o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in node.get("options") or []
            )
            and validate
        ):
            raise LookupError(f"/{' '.join([name, *path])} is a group: name a subcommand")
        leaf = self._build_options(
            guild_id,
            channel_id,
            leaf_schema,
            options,
            resolved,
            focused=focused,
            validate=validate and schema is not None,
        )
        for part, kind in reversed(chain):
            leaf = [{"type": kind, "name": part, "options": leaf}]
        data: dict[str, Any] = {
            "id": schema["id"] if schema else str(self.snowflake()),
            "name": name,
            "type": 1,
        }
        if leaf:
            data["options"] = leaf
        if resolved:
            data["resolved"] = resolved
        target_guild = (
            command_guild_id if command_guild_id is not None else (guild_id if is_guild else None)
        )
        if target_guild is not None:
            data["guild_id"] = str(target_guild)
        return data

    def _build_options(
        self,
        guild_id: int,
        channel_id: int,
        schema: list[dict[str, Any]] | None,
        values: dict[str, Any],
        resolved: dict[str, dict[str, Any]],
        *,
        focused: str | None,
        validate: bool,
    ) -> list[dict[str, Any]]:
        by_name = {o["name"]: o for o in schema or []}
        out: list[dict[str, Any]] = []
        if validate and focused is None:
            missing = [
                o["name"] for o in schema or [] if o.get("required") and o["name"] not in values
            ]
            if missing:
                raise ValueError(f"required options missing: {missing}")
        guild = self.guilds[guild_id]
        for name, value in values.items():
            if value is None:
                continue
            spec = by_name.get(name)
            if spec is None and validate:
                raise ValueError(f"unknown option {name!r}; the command has {sorted(by_name)}")
            otype = int(spec["type"]) if spec is not None else option_type_for(value)
            entry: dict[str, Any] = {"name": name, "type": otype}
            if name == focused:
                if validate and spec is not None and not spec.get("autocomplete"):
                    raise ValueError(f"option {name!r} has no autocomplete")
                entry["value"] = value if isinstance(value, str) else str(value)
                entry["focused"] = True
                out.append(entry)
                continue
            entry["value"] = self._option_value(guild, otype, name, value, resolved)
            if validate and spec is not None:
                self._check_option(spec, entry["value"])
            out.append(entry)
        return out

    def _option_value(
        self,
        guild: FakeGuild,
        otype: int,
        name: str,
        value: Any,
        resolved: dict[str, dict[str, Any]],
    ) -> Any:
        if otype == STRING:
            return str(value)
        if otype == INTEGER:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"option {name!r} needs an int, got {value!r}")
            return value
        if otype == NUMBER:
            return float(value)
        if otype == BOOLEAN:
            return bool(value)
        if otype == ATTACHMENT:
            if not isinstance(value, AttachmentSpec):
                raise TypeError(f"option {name!r} needs an AttachmentSpec, got {value!r}")
            att = self._new_attachment(
                "ephemeral-attachments",
                self.application_id,
                filename=value.filename,
                content_type=value.resolved_content_type(),
                data=value.content,
                size=value.resolved_size,
                width=value.width,
                height=value.height,
                description=value.description,
                ephemeral=True,
                duration_secs=value.duration_secs,
            )
            resolved.setdefault("attachments", {})[str(att.id)] = payloads.attachment(att)
            return str(att.id)
        if otype == CHANNEL:
            cid = value.id if isinstance(value, FakeChannel) else int(value)
            channel = self.channels[cid]
            data = payloads.channel(channel)
            data["permissions"] = str(guild.channel_permissions(self.bot_user.id, channel))
            resolved.setdefault("channels", {})[str(cid)] = data
            return str(cid)
        if otype == ROLE or (otype == MENTIONABLE and isinstance(value, FakeRole)):
            rid = value.id if isinstance(value, FakeRole) else int(value)
            if rid in guild.roles:
                resolved.setdefault("roles", {})[str(rid)] = payloads.role(guild.roles[rid])
                return str(rid)
            if otype == ROLE:
                raise LookupError(f"unknown role {rid}")
        if otype in (USER, MENTIONABLE):
            user = self._user(value)
            resolved.setdefault("users", {})[str(user.id)] = payloads.user(user)
            member = guild.members.get(user.id)
            if member is not None:
                data = payloads.member(member, with_user=False)
                data["permissions"] = str(guild.base_permissions(user.id))
                resolved.setdefault("members", {})[str(user.id)] = data
            return str(user.id)
        raise ValueError(f"option type {otype} of {name!r} is not supported by the fake")

    def _check_option(self, spec: dict[str, Any], value: Any) -> None:
        name = spec["name"]
        choices = spec.get("choices")
        if choices and value not in [c["value"] for c in choices]:
            raise ValueError(
                f"{value!r} is not a choice of {name!r}: {[c['value'] for c in choices]}"
            )
        if isinstance(value, int | float) and not isinstance(value, bool):
            if spec.get("min_value") is not None and value < spec["min_value"]:
                raise ValueError(f"{name!r} must be >= {spec['min_value']}")
            if spec.get("max_value") is not None and value > spec["max_value"]:
                raise ValueError(f"{name!r} must be <= {spec['max_value']}")
        if isinstance(value, str) and int(spec.get("type", 3)) == STRING:
            if spec.get("min_length") is not None and len(value) < spec["min_length"]:
                raise ValueError(f"{name!r} must be at least {spec['min_length']} characters")
            if spec.get("max_length") is not None and len(value) > spec["max_length"]:
                raise ValueError(f"{name!r} must be at most {spec['max_length']} characters")

    async def invoke_slash(
        self,
        guild_id: int,
        channel_id: int,
        user: UserRef,
        command: str,
        *,
        subcommand: str | None = None,
        group: str | None = None,
        options: dict[str, Any] | None = None,
        attachments: dict[str, AttachmentSpec] | None = None,
        locale: str = "en-US",
        validate: bool = True,
        command_guild_id: int | None = None,
    ) -> FakeInteraction:
        """A member runs a slash command: builds INTERACTION_CREATE (type 2) and sends it to the bot.

        ``command`` may hold the whole path (``"quota-admin set"``) or use ``group``/``subcommand``.
        Option types come from the commands the bot synced to the fake (then unknown options,
        missing required ones, choices and min/max are checked as Discord's client would); for
        commands never synced they are inferred from the Python values. ``attachments`` merges into
        ``options`` (an ``AttachmentSpec`` value works directly, too).
        """
        values = dict(options or {})
        values.update(attachments or {})
        data = self._command_data(
            int(guild_id),
            int(channel_id),
            command,
            subcommand,
            group,
            values,
            focused=None,
            validate=validate,
            command_guild_id=command_guild_id,
        )
        inter = self._base_interaction(
            APPLICATION_COMMAND, guild_id, channel_id, user, data, locale=locale
        )
        await self.dispatch("INTERACTION_CREATE", inter.payload)
        return inter

    async def invoke_autocomplete(
        self,
        guild_id: int,
        channel_id: int,
        user: UserRef,
        command: str,
        *,
        focused: str,
        value: str = "",
        subcommand: str | None = None,
        group: str | None = None,
        options: dict[str, Any] | None = None,
        locale: str = "en-US",
        validate: bool = True,
    ) -> FakeInteraction:
        """A member types in an autocomplete option (type 4); ``await inter.wait_choices()``."""
        values = dict(options or {})
        values[focused] = value
        data = self._command_data(
            int(guild_id),
            int(channel_id),
            command,
            subcommand,
            group,
            values,
            focused=focused,
            validate=validate,
            command_guild_id=None,
        )
        inter = self._base_interaction(
            AUTOCOMPLETE, guild_id, channel_id, user, data, locale=locale
        )
        await self.dispatch("INTERACTION_CREATE", inter.payload)
        return inter

    async def click_button(
        self, message: MessageRef, custom_id: str, user: UserRef
    ) -> FakeInteraction:
        """A member clicks a button of a message (MESSAGE_COMPONENT, type 3)."""
        return await self._component(message, custom_id, user, None)

    async def select(
        self, message: MessageRef, custom_id: str, values: list[str], user: UserRef
    ) -> FakeInteraction:
        """A member picks ``values`` in a select menu of a message."""
        return await self._component(message, custom_id, user, values)

    async def _component(
        self, message: MessageRef, custom_id: str, user: UserRef, values: list[str] | None
    ) -> FakeInteraction:
        msg = self.message(message.id if isinstance(message, StoredMessage) else int(message))
        if msg is None or msg.deleted:
            raise LookupError(f"no such message {message!r}")
        comp = msg.component(custom_id)
        if comp.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled; a member cannot use it")
        ctype = int(comp.get("type", 2))
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": ctype}
        if values is not None:
            data["values"] = list(values)
        if msg.guild_id is None:
            raise ValueError("components in DMs are not supported by the fake")
        inter = self._base_interaction(
            MESSAGE_COMPONENT, msg.guild_id, msg.channel_id, user, data, message=msg
        )
        await self.dispatch("INTERACTION_CREATE", inter.payload)
        return inter

    # ------------------------------------------------------------------ interactions: the bot's answers

    def _reject(self, inter: FakeInteraction | None, route: str, err: DiscordError) -> DiscordError:
        if inter is not None:
            inter.rejections.append((route, err.code))
        return err

    def _record(self, inter: FakeInteraction, event: InteractionEvent) -> None:
        inter.responses.append(event)
        if event.message is not None and event.message.id not in inter.message_ids:
            inter.message_ids.append(event.message.id)

    async def _r_interaction_callback(
        self, rec: RecordedRequest, interaction_id: str, token: str
    ) -> Any:
        inter = self.interactions.get(int(interaction_id))
        if inter is None or inter.token != token:
            raise DiscordError(404, 10062)
        if inter.callback is not None:
            raise self._reject(inter, rec.route, DiscordError(400, 40060))
        if (
            self.interaction_deadline is not None
            and self.now() - inter.created_at > self.interaction_deadline
        ):
            raise self._reject(inter, rec.route, DiscordError(404, 10062))
        body = rec.json if isinstance(rec.json, dict) else {}
        ctype = int(body.get("type", 0))
        data = body.get("data") or {}
        if ctype not in ALLOWED_CALLBACKS.get(inter.type, set()):
            raise self._reject(
                inter,
                rec.route,
                _form_error(
                    "type",
                    "INTERACTION_RESPONSE_TYPE_INVALID",
                    f"Callback type {ctype} is invalid here",
                ),
            )
        channel = self.channels[inter.channel_id]
        ephemeral = bool(int(data.get("flags") or 0) & FLAG_EPHEMERAL)
        message: StoredMessage | None = None
        if ctype == CHANNEL_MESSAGE:
            self._check_sizes(
                channel,
                rec.files,
                self.guilds[inter.guild_id].upload_limit if inter.guild_id else None,
            )
            message = self._create_message(
                channel,
                data,
                rec.files,
                author_id=self.bot_user.id,
                interaction=inter,
                message_type=20 if inter.type == 2 else 19,
            )
            inter.original_id = message.id
        elif ctype == DEFERRED_CHANNEL_MESSAGE:
            message = self._create_message(
                channel,
                {"content": ""},
                [],
                author_id=self.bot_user.id,
                interaction=inter,
                extra_flags=FLAG_LOADING | (FLAG_EPHEMERAL if ephemeral else 0),
                message_type=20 if inter.type == 2 else 19,
                validate=False,
            )
            inter.original_id = message.id
        elif ctype in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE):
            source = self._messages.get(inter.source_message_id or 0)
            if source is None:
                raise self._reject(inter, rec.route, DiscordError(404, 10008))
            ephemeral = source.ephemeral
            if ctype == UPDATE_MESSAGE:
                self._edit_message(source, data, rec.files)
            inter.original_id = source.id
            message = source
        elif ctype == AUTOCOMPLETE_RESULT:
            choices = data.get("choices") or []
            if len(choices) > 25:
                raise self._reject(
                    inter,
                    rec.route,
                    _form_error(
                        "data.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                    ),
                )
            for i, choice in enumerate(choices):
                if not 1 <= len(str(choice.get("name", ""))) <= 100:
                    raise self._reject(
                        inter,
                        rec.route,
                        _form_error(
                            f"data.choices.{i}.name",
                            "BASE_TYPE_BAD_LENGTH",
                            "Must be between 1 and 100 in length.",
                        ),
                    )
            inter.choices = list(choices)
        elif ctype == MODAL:
            inter.modal = data
        event = InteractionEvent("callback", ctype, data, list(rec.files), message, ephemeral)
        inter.callback = event
        self._record(inter, event)
        if rec.query.get("with_response") not in ("1", "true", "True"):
            return None
        result: dict[str, Any] = {
            "interaction": {
                "id": str(inter.id),
                "type": inter.type,
                "response_message_id": str(message.id) if message is not None else None,
                "response_message_loading": ctype == DEFERRED_CHANNEL_MESSAGE,
                "response_message_ephemeral": ephemeral,
            }
        }
        if message is not None and ctype != DEFERRED_UPDATE_MESSAGE:
            result["resource"] = {"type": ctype, "message": self.message_payload(message)}
        elif ctype in (AUTOCOMPLETE_RESULT, MODAL):
            result["resource"] = {"type": ctype}
        return result

    def _webhook_interaction(
        self, rec: RecordedRequest, app_id: str, token: str
    ) -> FakeInteraction:
        if int(app_id) != self.application_id:
            raise DiscordError(404, 10015)
        inter = self._interactions_by_token.get(token)
        if inter is None:
            raise DiscordError(401, 50027)
        if self.now() - inter.created_at > self.interaction_token_ttl:
            raise self._reject(inter, rec.route, DiscordError(401, 50027))
        return inter

    def _interaction_message(
        self, inter: FakeInteraction, message_id: str, rec: RecordedRequest
    ) -> StoredMessage:
        if message_id == "@original":
            if inter.callback is None or inter.original_id is None:
                raise self._reject(inter, rec.route, DiscordError(404, 10008))
            msg = self._messages.get(inter.original_id)
        else:
            mid = int(message_id)
            msg = (
                self._messages.get(mid)
                if (mid in inter.message_ids or mid == inter.original_id)
                else None
            )
        if msg is None or msg.deleted:
            raise self._reject(inter, rec.route, DiscordError(404, 10008))
        return msg

    async def _r_followup(self, rec: RecordedRequest, app_id: str, token: str) -> Any:
        inter = self._webhook_interaction(rec, app_id, token)
        if inter.callback is None:
            raise self._reject(inter, rec.route, DiscordError(404, 10015))
        body = rec.json if isinstance(rec.json, dict) else {}
        channel = self.channels[inter.channel_id]
        if channel.deleted:
            raise self._reject(inter, rec.route, DiscordError(404, 10003))
        self._check_sizes(channel, rec.files)
        original = self._messages.get(inter.original_id or 0)
        if (
            original is not None
            and original.loading
            and inter.callback.type == DEFERRED_CHANNEL_MESSAGE
        ):
            # Discord's rule: the first followup after a "thinking" defer replaces the loading
            # message, and keeps the defer's visibility (its own ephemeral flag is ignored).
            self._validate_message_body(body, rec.files, creating=True)
            self._edit_message(original, {k: v for k, v in body.items() if k != "flags"}, rec.files)
            message = original
            if message.id not in inter.followup_ids:
                inter.followup_ids.append(message.id)
        else:
            flags = int(body.get("flags") or 0)
            message = self._create_message(
                channel,
                body,
                rec.files,
                author_id=self.bot_user.id,
                interaction=inter,
                extra_flags=flags & FLAG_EPHEMERAL,
                message_type=20 if inter.type == 2 else 19,
            )
            inter.followup_ids.append(message.id)
        self._record(
            inter,
            InteractionEvent("followup", None, body, list(rec.files), message, message.ephemeral),
        )
        if rec.query.get("wait") in ("1", "true", "True"):
            return self.message_payload(message)
        return None

    async def _r_webhook_get(
        self, rec: RecordedRequest, app_id: str, token: str, message_id: str
    ) -> Any:
        inter = self._webhook_interaction(rec, app_id, token)
        msg = self._interaction_message(inter, message_id, rec)
        return self.message_payload(msg)

    async def _r_webhook_edit(
        self, rec: RecordedRequest, app_id: str, token: str, message_id: str
    ) -> Any:
        inter = self._webhook_interaction(rec, app_id, token)
        msg = self._interaction_message(inter, message_id, rec)
        body = rec.json if isinstance(rec.json, dict) else {}
        self._edit_message(msg, body, rec.files)
        self._record(
            inter,
            InteractionEvent(
                "edit", None, body, list(rec.files), msg, msg.ephemeral, target=message_id
            ),
        )
        return self.message_payload(msg)

    async def _r_webhook_delete(
        self, rec: RecordedRequest, app_id: str, token: str, message_id: str
    ) -> Any:
        inter = self._webhook_interaction(rec, app_id, token)
        msg = self._interaction_message(inter, message_id, rec)
        msg.deleted = True
        self._spawn(self._dispatch_message_event("MESSAGE_DELETE", msg))
        self._record(
            inter, InteractionEvent("delete", None, {}, [], msg, msg.ephemeral, target=message_id)
        )
        return None
