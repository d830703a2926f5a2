"""The fake Discord's world: users, guilds, channels, messages, attachments and what was asked of it.

These are plain dataclasses the test reads and mutates directly; the server turns them into
Discord JSON with :mod:`.payloads`.
"""

from __future__ import annotations

import asyncio
import fnmatch
import itertools
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DISCORD_EPOCH_MS = 1420070400000

# Permission bits the fake reasons about (values from Discord's documentation).
CREATE_INSTANT_INVITE = 1 << 0
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_EXTERNAL_EMOJIS = 1 << 18
CHANGE_NICKNAME = 1 << 26
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL_PERMISSIONS = (1 << 51) - 1

DEFAULT_EVERYONE_PERMISSIONS = (
    CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
)
# What the invite link of a typical video bot asks for.
DEFAULT_BOT_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | ADD_REACTIONS
    | USE_EXTERNAL_EMOJIS
    | SEND_MESSAGES_IN_THREADS
)

# Message flags.
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_COMPONENTS_V2 = 1 << 15

# Upload limits by premium tier, as Discord (and discord.py's Guild.filesize_limit) have them.
TIER_UPLOAD_LIMITS = {
    0: 10 * 1024 * 1024,
    1: 10 * 1024 * 1024,
    2: 50 * 1024 * 1024,
    3: 100 * 1024 * 1024,
}
DM_UPLOAD_LIMIT = 10 * 1024 * 1024


def permission_value(value: Any) -> int:
    """Accept an int, a str of digits or a ``discord.Permissions`` (anything with ``.value``)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise TypeError("permissions must be an int or discord.Permissions, not bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value)
    inner = getattr(value, "value", None)
    if isinstance(inner, int):
        return inner
    raise TypeError(f"cannot read permissions from {value!r}")


class SnowflakeFactory:
    """Snowflakes that sort by creation time, as discord.py expects (it reads times from ids)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self._last = 0

    def __call__(self) -> int:
        with self._lock:
            ms = int(self._clock() * 1000) - DISCORD_EPOCH_MS
            candidate = (ms << 22) | (next(self._counter) & 0xFFF)
            # Ids must stay unique and increasing even when the clock stands still or goes back.
            if candidate <= self._last:
                candidate = self._last + 1
            self._last = candidate
            return candidate

    def on_shard(self, shard_id: int, shard_count: int) -> int:
        """The next snowflake with ``(id >> 22) % shard_count == shard_id`` (the guild-to-shard
        rule): its timestamp is moved at most ``shard_count - 1`` ms ahead."""
        with self._lock:
            ms = int(self._clock() * 1000) - DISCORD_EPOCH_MS
            candidate = max((ms << 22) | (next(self._counter) & 0xFFF), self._last + 1)
            ahead = (shard_id - (candidate >> 22)) % shard_count
            if ahead:
                candidate = (((candidate >> 22) + ahead) << 22) | (candidate & 0x3FFFFF)
            self._last = candidate
            return candidate


@dataclass
class FakeUser:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False
    accepts_dms: bool = True
    avatar: str | None = None

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


@dataclass
class FakeRole:
    id: int
    guild_id: int
    name: str
    permissions: int = 0
    position: int = 0
    managed: bool = False
    mentionable: bool = False
    bot_id: int | None = None

    @property
    def mention(self) -> str:
        return f"<@&{self.id}>"


@dataclass
class FakeMember:
    user: FakeUser
    guild_id: int
    role_ids: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: float = field(default_factory=time.time)

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def mention(self) -> str:
        return f"<@{self.user.id}>"


@dataclass
class Overwrite:
    id: int
    type: int  # 0 role, 1 member
    allow: int = 0
    deny: int = 0


@dataclass
class FakeChannel:
    id: int
    name: str
    type: int = 0  # 0 text, 1 DM, 2 voice, 4 category, 5 news, 15 forum
    guild_id: int | None = None
    position: int = 0
    parent_id: int | None = None
    topic: str | None = None
    nsfw: bool = False
    overwrites: list[Overwrite] = field(default_factory=list)
    recipient_id: int | None = None  # DM channels
    deleted: bool = False

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"

    @property
    def is_dm(self) -> bool:
        return self.type == 1


@dataclass
class FakeGuild:
    id: int
    name: str
    owner_id: int
    premium_tier: int = 0
    locale: str = "en-US"
    features: list[str] = field(default_factory=list)
    attachment_size_limit: int | None = None  # None: from premium tier
    roles: dict[int, FakeRole] = field(default_factory=dict)
    channels: dict[int, FakeChannel] = field(default_factory=dict)
    members: dict[int, FakeMember] = field(default_factory=dict)
    unavailable: bool = False

    @property
    def upload_limit(self) -> int:
        if self.attachment_size_limit is not None:
            return self.attachment_size_limit
        return TIER_UPLOAD_LIMITS.get(self.premium_tier, TIER_UPLOAD_LIMITS[0])

    @property
    def everyone_role(self) -> FakeRole:
        return self.roles[self.id]

    @property
    def default_channel(self) -> FakeChannel:
        """The first text channel added (``add_guild`` creates ``#general`` by default)."""
        for channel in self.channels.values():
            if channel.type == 0 and not channel.deleted:
                return channel
        raise LookupError(f"guild {self.id} has no text channel")

    @property
    def default_channel_id(self) -> int:
        return self.default_channel.id

    def channel_named(self, name: str) -> FakeChannel:
        for channel in self.channels.values():
            if channel.name == name:
                return channel
        raise LookupError(f"guild {self.id} has no channel named {name!r}")

    def base_permissions(self, user_id: int) -> int:
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        perms = self.everyone_role.permissions
        member = self.members.get(user_id)
        if member is not None:
            for role_id in member.role_ids:
                role = self.roles.get(role_id)
                if role is not None:
                    perms |= role.permissions
        if perms & ADMINISTRATOR:
            return ALL_PERMISSIONS
        return perms

    def channel_permissions(self, user_id: int, channel: FakeChannel | None) -> int:
        """Discord's permission algorithm: base, then @everyone, role and member overwrites."""
        perms = self.base_permissions(user_id)
        if perms & ADMINISTRATOR or channel is None:
            return perms
        overwrites = {(o.type, o.id): o for o in channel.overwrites}
        everyone = overwrites.get((0, self.id))
        if everyone is not None:
            perms = (perms & ~everyone.deny) | everyone.allow
        member = self.members.get(user_id)
        allow = deny = 0
        if member is not None:
            for role_id in member.role_ids:
                o = overwrites.get((0, role_id))
                if o is not None:
                    allow |= o.allow
                    deny |= o.deny
        perms = (perms & ~deny) | allow
        personal = overwrites.get((1, user_id))
        if personal is not None:
            perms = (perms & ~personal.deny) | personal.allow
        if not perms & VIEW_CHANNEL:
            return 0
        return perms


@dataclass
class UploadedFile:
    """One ``files[n]`` part of a multipart request, exactly as received."""

    field: str
    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class StoredAttachment:
    id: int
    filename: str
    content_type: str | None
    size: int
    data: bytes
    url: str
    proxy_url: str
    expires_at: float
    width: int | None = None
    height: int | None = None
    description: str | None = None
    ephemeral: bool = False
    duration_secs: float | None = None
    deleted: bool = False
    downloads: int = 0
    kind: str = "attachments"  # CDN folder: "attachments" or "ephemeral-attachments"
    owner_id: int = 0  # channel id, or the application id for ephemeral attachments


@dataclass
class StoredMessage:
    id: int
    channel_id: int
    guild_id: int | None
    author_id: int
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[StoredAttachment] = field(default_factory=list)
    flags: int = 0
    nonce: str | int | None = None
    tts: bool = False
    message_reference: dict[str, Any] | None = None
    allowed_mentions: dict[str, Any] | None = None
    type: int = 0
    webhook_id: int | None = None
    application_id: int | None = None
    interaction_id: int | None = None
    interaction_metadata: dict[str, Any] | None = None
    created_at: float = 0.0
    edited_at: float | None = None
    deleted: bool = False
    pinged_user_ids: list[int] = field(default_factory=list)
    pinged_role_ids: list[int] = field(default_factory=list)
    pings_everyone: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier versions (payload dicts)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & FLAG_LOADING)

    @property
    def files(self) -> list[StoredAttachment]:
        return self.attachments

    @property
    def reply_to(self) -> int | None:
        if self.message_reference and self.message_reference.get("message_id") is not None:
            return int(self.message_reference["message_id"])
        return None

    @property
    def text(self) -> str:
        """Content plus every human-readable embed string, for ``in`` assertions."""
        parts = [self.content] if self.content else []
        for embed in self.embeds:
            for key in ("title", "description"):
                if embed.get(key):
                    parts.append(str(embed[key]))
            author = embed.get("author") or {}
            if author.get("name"):
                parts.append(str(author["name"]))
            for fld in embed.get("fields") or []:
                parts.append(f"{fld.get('name', '')}: {fld.get('value', '')}")
            footer = embed.get("footer") or {}
            if footer.get("text"):
                parts.append(str(footer["text"]))
        parts.extend(_component_texts(self.components))
        return "\n".join(parts)

    def iter_components(self) -> list[dict[str, Any]]:
        """Every interactive component (buttons, selects), however deeply nested."""
        found: list[dict[str, Any]] = []
        _walk_components(self.components, found)
        return found

    @property
    def buttons(self) -> list[dict[str, Any]]:
        return [c for c in self.iter_components() if c.get("type") == 2]

    def component(self, custom_id: str) -> dict[str, Any]:
        for comp in self.iter_components():
            if comp.get("custom_id") == custom_id:
                return comp
        known = [c.get("custom_id") for c in self.iter_components()]
        raise LookupError(f"message {self.id} has no component {custom_id!r} (has {known})")


def _walk_components(components: list[dict[str, Any]], found: list[dict[str, Any]]) -> None:
    for comp in components or []:
        if comp.get("custom_id") is not None or comp.get("type") == 2:
            found.append(comp)
        for key in ("components",):
            if isinstance(comp.get(key), list):
                _walk_components(comp[key], found)
        accessory = comp.get("accessory")
        if isinstance(accessory, dict):
            _walk_components([accessory], found)
        inner = comp.get("component")
        if isinstance(inner, dict):
            _walk_components([inner], found)


def _component_texts(components: list[dict[str, Any]]) -> list[str]:
    texts: list[str] = []
    for comp in components or []:
        if comp.get("type") == 10 and comp.get("content"):
            texts.append(str(comp["content"]))
        if isinstance(comp.get("components"), list):
            texts.extend(_component_texts(comp["components"]))
    return texts


@dataclass
class RecordedRequest:
    method: str
    path: str  # API path without the /api/v10 prefix, e.g. "/channels/1/messages"; CDN paths as served
    query: dict[str, str]
    headers: dict[str, str]  # Authorization redacted
    json: Any = None  # JSON body, or the parsed payload_json of a multipart request
    files: list[UploadedFile] = field(default_factory=list)
    status: int | None = None  # None while running, or when the connection was dropped
    fault: Fault | None = None
    at: float = 0.0
    response: Any = None  # the JSON the fake answered with (None for empty bodies)

    @property
    def route(self) -> str:
        return f"{self.method} {self.path}"


# Default bodies for faults, keyed by Discord JSON error code: (HTTP status, message).
ERROR_CODES: dict[int, tuple[int, str]] = {
    0: (500, "500: Internal Server Error"),
    10003: (404, "Unknown Channel"),
    10004: (404, "Unknown Guild"),
    10007: (404, "Unknown Member"),
    10008: (404, "Unknown Message"),
    10013: (404, "Unknown User"),
    10015: (404, "Unknown Webhook"),
    10062: (404, "Unknown interaction"),
    20028: (
        429,
        "The write action you are performing on the channel has hit the write rate limit.",
    ),
    40005: (413, "Request entity too large"),
    40060: (400, "Interaction has already been acknowledged."),
    50001: (403, "Missing Access"),
    50005: (403, "Cannot edit a message authored by another user"),
    50006: (400, "Cannot send an empty message"),
    50007: (403, "Cannot send messages to this user"),
    50013: (403, "Missing Permissions"),
    50027: (401, "Invalid Webhook Token"),
    50033: (400, "Invalid Recipient(s)"),
    50035: (400, "Invalid Form Body"),
}
DEFAULT_CODE_FOR_STATUS = {
    400: 50035,
    401: 0,
    403: 50013,
    404: 10003,
    413: 40005,
}


@dataclass
class Fault:
    """An injected failure for requests whose ``"METHOD /path"`` matches ``pattern``.

    ``pattern`` is an fnmatch pattern (``*`` also matches ``/``) over ``"METHOD /path"``; a pattern
    without a method matches every method. ``times=None`` means always.
    """

    pattern: str
    status: int
    code: int
    message: str
    times: int | None = 1
    retry_after: float = 0.01
    is_global: bool = False
    drop: bool = False  # close the socket instead of answering
    accept: bool = True  # for drops: perform the request first (the upload "landed")
    delay: float = 0.0  # seconds to wait before answering (e.g. to outlast a timeout)
    when: Callable[[RecordedRequest], bool] | None = None
    hold: bool = False  # keep the request until release(): after performing it if accept
    hits: int = 0
    active: bool = True
    held: list[RecordedRequest] = field(default_factory=list)  # requests a hold has kept
    _released: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def matches(self, request: RecordedRequest) -> bool:
        if not self.active or (self.times is not None and self.hits >= self.times):
            return False
        pattern = self.pattern
        if not re.match(r"^[A-Z]+ ", pattern):
            pattern = "* " + pattern
        if not fnmatch.fnmatchcase(f"{request.method} {request.path}", pattern):
            return False
        return self.when is None or bool(self.when(request))

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    @property
    def released(self) -> bool:
        return self._released.is_set()

    def release(self) -> None:
        """Let every request this hold keeps (and any it matches later) go on."""
        self._released.set()

    def cancel(self) -> None:
        """Stop matching; a hold hangs up on the requests it keeps (never performing them)."""
        self.active = False
        self._released.set()

    async def wait_released(self) -> None:
        await self._released.wait()


@dataclass
class CommandSync:
    """One PUT of the command list, global (guild_id None) or for one guild."""

    guild_id: int | None
    payload: list[dict[str, Any]]
    at: float
