"""The base every part of ``FakeDiscord`` builds on: configuration, clock, directory, waiting.

``FakeDiscord`` (server.py) is composed of mixins, one per concern (world.py, messages.py,
commands.py, invoke.py, callbacks.py, connections.py, faults.py, routes.py, ...). They share
what is declared here:

- the configuration the constructor stores (token, application, deadlines, TTLs, switches);
- the fake clock (``now`` / ``advance``) and change notification (``_notify`` wakes
  ``wait_until``);
- the world's directory every part reads (``users``, ``guilds``, ``channels``, ``dm_channels``;
  world.py builds it);
- :func:`route`, with which each mixin declares its REST routes in ``ROUTES``
  (routes.py collects them).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from .models import FakeChannel, FakeGuild, FakeMember, FakeUser, SnowflakeFactory, StoredMessage

UserRef = int | FakeUser | FakeMember
MessageRef = int | StoredMessage


@dataclass(frozen=True)
class RouteSpec:
    """One REST route: ``path`` is a regex over the API path (without ``/api/v10``)."""

    method: str
    path: str
    handler: str  # name of the ``async def handler(rec, **groups)`` method
    auth: bool = True  # needs ``Authorization: Bot <token>``


def route(method: str, path: str, handler: str, *, auth: bool = True) -> RouteSpec:
    """Declare a route; ``{name}`` in ``path`` is a snowflake passed to the handler as ``name``."""
    return RouteSpec(method, re.sub(r"\{(\w+)\}", r"(?P<\1>\\d+)", path), handler, auth)


class FakeCore:
    """State and helpers shared by every mixin of ``FakeDiscord``."""

    ROUTES: ClassVar[tuple[RouteSpec, ...]] = ()

    # Configuration (set by FakeDiscord.__init__; tests may flip the switches at any time).
    token: str
    application_id: int
    application_flags: int
    bot_user: FakeUser
    heartbeat_interval_ms: int
    shard_count: int  # guild events go to shard (guild_id >> 22) % shard_count
    interaction_deadline: float | None  # seconds to send the initial callback
    interaction_token_ttl: float  # seconds the interaction token works for followups
    attachment_ttl: float  # seconds a CDN link lives
    nonce_window: float  # seconds an enforce_nonce retry returns the first message
    default_bot_permissions: int
    allowed_privileged_intents: int
    dispatch_message_events: bool  # send MESSAGE_CREATE/UPDATE/DELETE to the bot
    ack_heartbeats: bool
    allow_resume: bool
    refresh_urls_enabled: bool
    host: str
    port: int

    # The clock and the directory of the world.
    time_offset: float
    snowflake: SnowflakeFactory
    users: dict[int, FakeUser]
    guilds: dict[int, FakeGuild]
    channels: dict[int, FakeChannel]
    dm_channels: dict[int, FakeChannel]  # by recipient id
    _changed: asyncio.Event

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws"

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

    # ------------------------------------------------------------------ directory lookups

    def _user(self, ref: UserRef) -> FakeUser:
        if isinstance(ref, FakeUser):
            return ref
        if isinstance(ref, FakeMember):
            return ref.user
        user = self.users.get(int(ref))
        if user is None:
            raise LookupError(f"unknown user {ref}")
        return user
