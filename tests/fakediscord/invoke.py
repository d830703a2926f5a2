"""A member acts: slash commands, autocomplete, button clicks and select menus.

``invoke_slash``, ``invoke_autocomplete``, ``click_button`` and ``select`` build the
INTERACTION_CREATE Discord would send (member with channel permissions, ``app_permissions``,
``attachment_size_limit``, locale, a fresh token …), remember it as a ``FakeInteraction`` and
deliver it to the connection holding the guild's shard; when no connection does, the
interaction is marked undelivered (``delivered=False``, ``undelivered_interactions``) instead.
What the bot answers is handled in callbacks.py.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from . import payloads
from .core import MessageRef, UserRef
from .interactions import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    MESSAGE_COMPONENT,
    AttachmentSpec,
    FakeInteraction,
)
from .messages import MessagesMixin
from .models import FakeGuild, FakeMember, StoredMessage
from .options import OptionsMixin

log = logging.getLogger(__name__)


class InvokeMixin(MessagesMixin, OptionsMixin):
    """Interactions a test sends to the bot on behalf of a member."""

    interactions: dict[int, FakeInteraction]
    _interactions_by_token: dict[str, FakeInteraction]
    # Interactions no connection could receive: the app was offline for their shard.
    undelivered_interactions: list[FakeInteraction]

    def _init_interactions(self) -> None:
        self.interactions = {}
        self._interactions_by_token = {}
        self.undelivered_interactions = []

    async def _deliver_interaction(self, inter: FakeInteraction) -> None:
        """INTERACTION_CREATE to the connection holding the guild's shard. With none (and no
        session that could resume), Discord's member sees "The application did not respond":
        the interaction is never answered, and recorded in ``undelivered_interactions``."""
        shard_id = self._event_shard(inter.guild_id)
        if await self._deliver(shard_id, "INTERACTION_CREATE", inter.payload):
            return
        inter.delivered = False
        inter.undelivered_reason = f"no gateway connection holds shard {shard_id}"
        self.undelivered_interactions.append(inter)
        log.info("interaction %s not delivered: %s", inter.id, inter.undelivered_reason)
        self._notify()

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
        await self._deliver_interaction(inter)
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
        await self._deliver_interaction(inter)
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
        await self._deliver_interaction(inter)
        return inter
