"""Messages: the store, what the bot may post, edit, read and delete, and who gets pinged.

Driver side: ``message``, ``messages``, ``all_messages``, ``dms``, ``dm_channel``,
``add_message`` (seed history) and ``wait_for_message``. REST side: create (with uploads,
``enforce_nonce`` deduplication within ``nonce_window``, replies), get, list (before / after /
around), edit and delete, each with Discord's permission checks. ``_create_message`` /
``_edit_message`` are shared with interaction responses (callbacks.py); mentions are resolved
against ``allowed_mentions`` as Discord would; MESSAGE_* gateway events honour the intents.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

from . import payloads
from .attachments import AttachmentsMixin
from .core import RouteSpec, UserRef, route
from .errors import DiscordError, form_error
from .gateway import INTENT_DM_MESSAGES, INTENT_GUILD_MESSAGES, INTENT_MESSAGE_CONTENT
from .interactions import APPLICATION_COMMAND, FakeInteraction
from .models import (
    ATTACH_FILES,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    MANAGE_MESSAGES,
    MENTION_EVERYONE,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    FakeChannel,
    FakeUser,
    RecordedRequest,
    StoredMessage,
    UploadedFile,
)
from .validation import validate_message_body
from .world import WorldMixin

USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")


class MessagesMixin(WorldMixin, AttachmentsMixin):
    """The message store and the channel message routes."""

    ROUTES: ClassVar[tuple[RouteSpec, ...]] = (
        route("GET", r"/channels/{channel_id}/messages", "_r_list_messages"),
        route("POST", r"/channels/{channel_id}/messages", "_r_create_message"),
        route("GET", r"/channels/{channel_id}/messages/{message_id}", "_r_get_message"),
        route("PATCH", r"/channels/{channel_id}/messages/{message_id}", "_r_edit_message"),
        route("DELETE", r"/channels/{channel_id}/messages/{message_id}", "_r_delete_message"),
    )

    _messages: dict[int, StoredMessage]
    _channel_messages: dict[int, list[int]]  # message ids per channel, oldest first
    _nonces: dict[tuple[int, str], tuple[float, int]]  # (author, nonce) -> (when, message id)

    def _init_messages(self) -> None:
        self._messages = {}
        self._channel_messages = {}
        self._nonces = {}

    # ------------------------------------------------------------------ driver side

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
            self._dispatch_message_event("MESSAGE_CREATE", msg)
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

    # ------------------------------------------------------------------ creating and editing

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
                raise form_error(
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
            validate_message_body(body, files, creating=True)
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
        self._dispatch_message_event("MESSAGE_CREATE", msg)
        return msg

    def _edit_message(
        self, msg: StoredMessage, body: dict[str, Any], files: list[UploadedFile]
    ) -> None:
        channel = self.channels[msg.channel_id]
        validate_message_body(body, files, creating=False)
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
        self._dispatch_message_event("MESSAGE_UPDATE", msg)

    def _require_send(self, channel: FakeChannel, files: list[UploadedFile]) -> None:
        if channel.is_dm:
            assert channel.recipient_id is not None
            if not self.users[channel.recipient_id].accepts_dms:
                raise DiscordError(403, 50007)
            return
        self._require(channel, SEND_MESSAGES | (ATTACH_FILES if files else 0))

    # ------------------------------------------------------------------ REST

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
        self._dispatch_message_event("MESSAGE_DELETE", msg)
        return None

    # ------------------------------------------------------------------ gateway events

    def _dispatch_message_event(self, event: str, msg: StoredMessage) -> None:
        """MESSAGE_CREATE / UPDATE / DELETE to the shard of the message's guild (DMs: shard 0)."""
        channel = self.channels.get(msg.channel_id)
        if not self.dispatch_message_events or msg.ephemeral or channel is None:
            return
        self._dispatch_later(
            msg.guild_id,
            event,
            lambda intents: self._message_event_data(event, msg, channel, intents),
        )

    def _message_event_data(
        self, event: str, msg: StoredMessage, channel: FakeChannel, intents: int
    ) -> dict[str, Any] | None:
        """What a session with ``intents`` receives of a message event (None: nothing)."""
        needed = INTENT_DM_MESSAGES if channel.is_dm else INTENT_GUILD_MESSAGES
        if not intents & needed:
            return None
        if event == "MESSAGE_DELETE":
            data: dict[str, Any] = {"id": str(msg.id), "channel_id": str(msg.channel_id)}
            if msg.guild_id is not None:
                data["guild_id"] = str(msg.guild_id)
            return data
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
        return data
