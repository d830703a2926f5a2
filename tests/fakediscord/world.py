"""The world the bot lives in: users, guilds, roles, members, channels and permissions.

Driver side: ``add_user``, ``add_guild``, ``add_channel``, ``add_role``, ``add_member``,
``set_permissions``, ``delete_channel``, ``bot_member``. REST side: the bot's own user and
application, users, DM channels, guilds, roles, members and channels as Discord answers them,
with the permission checks (``bot_permissions_in``, ``_require``) the other routes reuse.
The directory itself (``users``, ``guilds``, ``channels``, ``dm_channels``) is declared in
core.py; the clock and snowflakes live there too.
"""

from __future__ import annotations

from typing import Any, ClassVar

from . import payloads
from .connections import ConnectionsMixin
from .core import RouteSpec, UserRef, route
from .errors import DiscordError, form_error
from .models import (
    ALL_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
    Overwrite,
    RecordedRequest,
    permission_value,
)


class WorldMixin(ConnectionsMixin):
    """Building the world, and the REST routes that read it."""

    ROUTES: ClassVar[tuple[RouteSpec, ...]] = (
        route("GET", r"/users/@me", "_r_me"),
        route("GET", r"/oauth2/applications/@me", "_r_application"),
        route("GET", r"/applications/@me", "_r_application"),
        route("GET", r"/users/{user_id}", "_r_get_user"),
        route("POST", r"/users/@me/channels", "_r_open_dm"),
        route("GET", r"/guilds/{guild_id}", "_r_get_guild"),
        route("GET", r"/guilds/{guild_id}/channels", "_r_get_guild_channels"),
        route("GET", r"/guilds/{guild_id}/roles", "_r_get_roles"),
        route("GET", r"/guilds/{guild_id}/members/{user_id}", "_r_get_member"),
        route("GET", r"/channels/{channel_id}", "_r_get_channel"),
        route("POST", r"/channels/{channel_id}/typing", "_r_typing"),
    )

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
        shard_id: int | None = None,
    ) -> FakeGuild:
        """A guild the bot is in, with @everyone, the bot's managed role, an owner and channels.

        ``attachment_size_limit`` overrides the upload limit derived from ``premium_tier``
        (Discord's interactions carry it; discord.py's ``Guild.filesize_limit`` keeps using the tier).
        ``shard_id`` picks an id that Discord routes to that shard under ``shard_count``.
        """
        if shard_id is not None and not 0 <= shard_id < self.shard_count:
            raise ValueError(f"shard_id {shard_id} is not in range(shard_count={self.shard_count})")
        if id is not None and shard_id is not None and self.shard_of(id) != shard_id:
            raise ValueError(f"guild id {id} belongs to shard {self.shard_of(id)}, not {shard_id}")
        if id is not None:
            gid = id
        elif shard_id is not None:
            gid = self.snowflake.on_shard(shard_id, self.shard_count)
        else:
            gid = self.snowflake()
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
        self._dispatch_later(guild_id, "CHANNEL_CREATE", payloads.channel(channel))
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
        self._dispatch_later(
            guild_id, "GUILD_ROLE_CREATE", {"guild_id": str(guild_id), "role": payloads.role(role)}
        )
        return role

    def delete_role(self, guild_id: int, role: FakeRole | int) -> None:
        """The role is deleted, as Discord does it: gone from the guild and from every member
        (later interactions no longer list it); the bot gets GUILD_ROLE_DELETE."""
        guild = self.guilds[guild_id]
        role_id = role.id if isinstance(role, FakeRole) else int(role)
        guild.roles.pop(role_id, None)
        for member in guild.members.values():
            if role_id in member.role_ids:
                member.role_ids.remove(role_id)
        self._dispatch_later(
            guild_id, "GUILD_ROLE_DELETE", {"guild_id": str(guild_id), "role_id": str(role_id)}
        )

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
            self._dispatch_later(channel.guild_id, "CHANNEL_DELETE", payloads.channel(channel))

    def bot_member(self, guild_id: int) -> FakeMember:
        return self.guilds[guild_id].members[self.bot_user.id]

    # ------------------------------------------------------------------ lookups and permissions

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

    # ------------------------------------------------------------------ REST: the bot, users and DMs

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
            raise form_error(
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
