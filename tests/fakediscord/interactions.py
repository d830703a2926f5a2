"""Interactions the fake sends to the bot, and what the bot answered to each."""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .models import FakeChannel, FakeMember, FakeRole, FakeUser, StoredMessage, UploadedFile

if TYPE_CHECKING:
    from .messages import MessagesMixin

# Interaction types.
PING = 1
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
AUTOCOMPLETE = 4
MODAL_SUBMIT = 5

# Callback types.
PONG = 1
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
AUTOCOMPLETE_RESULT = 8
MODAL = 9

# Application command option types.
SUB_COMMAND = 1
SUB_COMMAND_GROUP = 2
STRING = 3
INTEGER = 4
BOOLEAN = 5
USER = 6
CHANNEL = 7
ROLE = 8
MENTIONABLE = 9
NUMBER = 10
ATTACHMENT = 11

ALLOWED_CALLBACKS = {
    APPLICATION_COMMAND: {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, MODAL},
    MESSAGE_COMPONENT: {
        CHANNEL_MESSAGE,
        DEFERRED_CHANNEL_MESSAGE,
        DEFERRED_UPDATE_MESSAGE,
        UPDATE_MESSAGE,
        MODAL,
    },
    AUTOCOMPLETE: {AUTOCOMPLETE_RESULT},
    MODAL_SUBMIT: {
        CHANNEL_MESSAGE,
        DEFERRED_CHANNEL_MESSAGE,
        DEFERRED_UPDATE_MESSAGE,
        UPDATE_MESSAGE,
    },
}


@dataclass
class AttachmentSpec:
    """A file a member attaches to a slash command option.

    ``size`` defaults to ``len(content)``; give a larger ``size`` to describe a big file
    without building its bytes (the CDN then serves only ``content``).
    """

    filename: str
    content_type: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    content: bytes = b""
    description: str | None = None
    duration_secs: float | None = None

    def resolved_content_type(self) -> str | None:
        if self.content_type is not None:
            return self.content_type
        guessed, _ = mimetypes.guess_type(self.filename)
        return guessed

    @property
    def resolved_size(self) -> int:
        return self.size if self.size is not None else len(self.content)


@dataclass
class InteractionEvent:
    """One answer of the bot to an interaction, in the order received.

    kind: ``callback`` (POST /interactions/{id}/{token}/callback), ``followup``
    (POST /webhooks/{app}/{token}), ``edit`` (PATCH .../messages/@original or /{id}),
    ``delete`` or ``get``.
    """

    kind: str
    type: int | None  # the callback type for ``callback``
    data: dict[str, Any]
    files: list[UploadedFile] = field(default_factory=list)
    message: StoredMessage | None = None
    ephemeral: bool = False
    target: str | None = None  # "@original" or a message id for edits/deletes

    @property
    def text(self) -> str:
        return (
            self.message.text if self.message is not None else str(self.data.get("content") or "")
        )


class FakeInteraction:
    """Driver-side view of one interaction: its payload and everything the bot did with it."""

    def __init__(
        self,
        fake: MessagesMixin,
        *,
        id: int,
        token: str,
        type: int,
        payload: dict[str, Any],
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        created_at: float,
        source_message_id: int | None = None,
    ) -> None:
        self._fake = fake
        self.id = id
        self.token = token
        self.type = type
        self.payload = payload
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.user_id = user_id
        self.created_at = created_at
        self.source_message_id = source_message_id
        self.responses: list[InteractionEvent] = []
        self.callback: InteractionEvent | None = None
        self.original_id: int | None = None
        self.followup_ids: list[int] = []
        self.message_ids: list[int] = []  # every message this interaction created
        self.choices: list[dict[str, Any]] | None = None
        self.modal: dict[str, Any] | None = None
        self.rejections: list[tuple[str, int]] = []  # (route, error code) the fake refused
        # False when no gateway connection held the guild's shard: the bot never saw it.
        self.delivered = True
        self.undelivered_reason: str | None = None

    def __repr__(self) -> str:
        cb = self.callback.type if self.callback else None
        return f"<FakeInteraction id={self.id} type={self.type} callback={cb} responses={len(self.responses)}>"

    # -- state -------------------------------------------------------------------------

    @property
    def responded(self) -> bool:
        return self.callback is not None

    @property
    def deferred(self) -> bool:
        return self.callback is not None and self.callback.type in (
            DEFERRED_CHANNEL_MESSAGE,
            DEFERRED_UPDATE_MESSAGE,
        )

    @property
    def ephemeral(self) -> bool:
        """Whether the initial response (message or defer) was ephemeral."""
        return self.callback is not None and self.callback.ephemeral

    @property
    def original(self) -> StoredMessage | None:
        return self._fake.message(self.original_id) if self.original_id is not None else None

    @property
    def followups(self) -> list[StoredMessage]:
        found = (self._fake.message(mid) for mid in self.followup_ids)
        return [m for m in found if m is not None]

    @property
    def messages(self) -> list[StoredMessage]:
        """Every message the interaction produced (original and followups), deleted ones too."""
        found = (self._fake.message(mid) for mid in self.message_ids)
        return [m for m in found if m is not None]

    @property
    def last_message(self) -> StoredMessage | None:
        """The message most recently created or edited through this interaction."""
        for event in reversed(self.responses):
            if event.message is not None:
                return self._fake.message(event.message.id) or event.message
        return None

    @property
    def texts(self) -> list[str]:
        """The visible text of every non-loading message of this interaction."""
        return [m.text for m in self.messages if not m.loading and not m.deleted]

    # -- waiting -----------------------------------------------------------------------

    async def wait_for(
        self,
        predicate: Callable[[FakeInteraction], bool],
        timeout: float = 5.0,
    ) -> None:
        if not self.delivered and not predicate(self):
            # Nothing can change: fail now rather than after the timeout.
            raise TimeoutError(f"{self!r} was never delivered: {self.undelivered_reason}")
        await self._fake.wait_until(
            lambda: predicate(self), timeout=timeout, what=f"{self!r} condition"
        )

    async def wait_response(self, timeout: float = 5.0) -> InteractionEvent:
        """The initial callback (defer, message, update, autocomplete result or modal)."""
        await self.wait_for(lambda i: i.callback is not None, timeout)
        assert self.callback is not None
        return self.callback

    async def wait_followup(self, count: int = 1, timeout: float = 5.0) -> InteractionEvent:
        """The ``count``-th followup (1-based)."""

        def enough(i: FakeInteraction) -> bool:
            return sum(1 for e in i.responses if e.kind == "followup") >= count

        await self.wait_for(enough, timeout)
        return [e for e in self.responses if e.kind == "followup"][count - 1]

    async def wait_message(self, timeout: float = 5.0) -> StoredMessage:
        """The first message with real content: a type-4 reply, a followup, or the edit after a defer."""

        def has_message(i: FakeInteraction) -> bool:
            return any(not m.loading for m in i.messages)

        await self.wait_for(has_message, timeout)
        return next(m for m in self.messages if not m.loading)

    async def wait_choices(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        await self.wait_for(lambda i: i.choices is not None, timeout)
        assert self.choices is not None
        return self.choices

    async def wait_idle(self, quiet: float = 0.1, timeout: float = 5.0) -> None:
        """Wait until the bot has answered and then stayed silent for ``quiet`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await self.wait_response(timeout)
        seen = -1
        while len(self.responses) != seen:
            seen = len(self.responses)
            if loop.time() + quiet > deadline:
                raise TimeoutError(f"{self!r} kept answering")
            await asyncio.sleep(quiet)


def option_type_for(value: Any) -> int:
    """Infer an option type when the command was never synced to the fake."""
    if isinstance(value, AttachmentSpec):
        return ATTACHMENT
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, float):
        return NUMBER
    if isinstance(value, FakeUser | FakeMember):
        return USER
    if isinstance(value, FakeChannel):
        return CHANNEL
    if isinstance(value, FakeRole):
        return ROLE
    return STRING


def find_command(commands: list[dict[str, Any]], name: str, type: int = 1) -> dict[str, Any] | None:
    for cmd in commands:
        if cmd.get("name") == name and int(cmd.get("type", 1)) == type:
            return cmd
    return None
