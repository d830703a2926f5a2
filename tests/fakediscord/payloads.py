"""Discord API v10 JSON shapes, built from the fake's models.

Kept close to what Discord really sends, because discord.py indexes many keys without ``.get``.
"""

from __future__ import annotations

import datetime
from typing import Any

from .models import (
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
    StoredAttachment,
    StoredMessage,
)


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat()


def user(u: FakeUser) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(u.id),
        "username": u.username,
        "global_name": u.global_name,
        "discriminator": "0",
        "avatar": u.avatar,
        "public_flags": 0,
        "flags": 0,
        "banner": None,
        "accent_color": None,
        "avatar_decoration_data": None,
    }
    if u.bot:
        data["bot"] = True
    return data


def role(r: FakeRole) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(r.id),
        "name": r.name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": r.position,
        "permissions": str(r.permissions),
        "managed": r.managed,
        "mentionable": r.mentionable,
        "flags": 0,
    }
    if r.bot_id is not None:
        data["tags"] = {"bot_id": str(r.bot_id)}
    return data


def member(
    m: FakeMember, *, with_user: bool = True, permissions: int | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "roles": [str(r) for r in m.role_ids],
        "nick": m.nick,
        "avatar": None,
        "banner": None,
        "joined_at": iso(m.joined_at),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "pending": False,
        "flags": 0,
        "communication_disabled_until": None,
    }
    if with_user:
        data["user"] = user(m.user)
    if permissions is not None:
        data["permissions"] = str(permissions)
    return data


def overwrites(ch: FakeChannel) -> list[dict[str, Any]]:
    return [
        {"id": str(o.id), "type": o.type, "allow": str(o.allow), "deny": str(o.deny)}
        for o in ch.overwrites
    ]


def channel(ch: FakeChannel, *, recipients: list[FakeUser] | None = None) -> dict[str, Any]:
    if ch.is_dm:
        return {
            "id": str(ch.id),
            "type": 1,
            "last_message_id": None,
            "flags": 0,
            "recipients": [user(u) for u in recipients or []],
        }
    data: dict[str, Any] = {
        "id": str(ch.id),
        "type": ch.type,
        "guild_id": str(ch.guild_id),
        "name": ch.name,
        "position": ch.position,
        "permission_overwrites": overwrites(ch),
        "parent_id": str(ch.parent_id) if ch.parent_id else None,
        "nsfw": ch.nsfw,
        "flags": 0,
    }
    if ch.type in (0, 5):
        data.update(
            {
                "topic": ch.topic,
                "last_message_id": None,
                "rate_limit_per_user": 0,
                "default_auto_archive_duration": 1440,
            }
        )
    elif ch.type in (2, 13):
        data.update({"bitrate": 64000, "user_limit": 0, "rtc_region": None})
    return data


def guild_base(g: FakeGuild) -> dict[str, Any]:
    return {
        "id": str(g.id),
        "name": g.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "owner_id": str(g.owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": [role(r) for r in g.roles.values()],
        "emojis": [],
        "stickers": [],
        "features": list(g.features),
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "safety_alerts_channel_id": None,
        "max_members": 500000,
        "vanity_url_code": None,
        "description": None,
        "banner": None,
        "premium_tier": g.premium_tier,
        "premium_subscription_count": {0: 0, 1: 2, 2: 7, 3: 14}.get(g.premium_tier, 0),
        "preferred_locale": g.locale,
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
    }


def guild_create(g: FakeGuild, *, include_members: bool = True) -> dict[str, Any]:
    data = guild_base(g)
    live_channels = [c for c in g.channels.values() if not c.deleted]
    data.update(
        {
            "joined_at": iso(min((m.joined_at for m in g.members.values()), default=0.0)),
            "large": False,
            "unavailable": False,
            "member_count": len(g.members),
            "voice_states": [],
            "members": [member(m) for m in g.members.values()] if include_members else [],
            "channels": [channel(c) for c in live_channels],
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }
    )
    return data


def attachment(a: StoredAttachment) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(a.id),
        "filename": a.filename,
        "size": a.size,
        "url": a.url,
        "proxy_url": a.proxy_url,
    }
    if a.content_type:
        data["content_type"] = a.content_type
    if a.width is not None and a.height is not None:
        data["width"] = a.width
        data["height"] = a.height
    if a.description is not None:
        data["description"] = a.description
    if a.ephemeral:
        data["ephemeral"] = True
    if a.duration_secs is not None:
        data["duration_secs"] = a.duration_secs
    return data


def message(
    m: StoredMessage,
    *,
    author: FakeUser,
    mentions: list[FakeUser],
    referenced: dict[str, Any] | None = None,
    include_guild_id: bool = False,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(m.id),
        "channel_id": str(m.channel_id),
        "type": m.type,
        "author": user(author),
        "content": m.content,
        "timestamp": iso(m.created_at),
        "edited_timestamp": iso(m.edited_at),
        "tts": m.tts,
        "mention_everyone": m.pings_everyone,
        "mentions": [user(u) for u in mentions],
        "mention_roles": [str(r) for r in m.pinged_role_ids],
        "attachments": [attachment(a) for a in m.attachments],
        "embeds": m.embeds,
        "pinned": False,
        "flags": m.flags,
        "components": m.components,
    }
    if include_guild_id and m.guild_id is not None:
        data["guild_id"] = str(m.guild_id)
    if m.nonce is not None:
        data["nonce"] = m.nonce
    if m.webhook_id is not None:
        data["webhook_id"] = str(m.webhook_id)
    if m.application_id is not None:
        data["application_id"] = str(m.application_id)
    if m.message_reference is not None:
        data["message_reference"] = m.message_reference
        data["referenced_message"] = referenced
    if m.interaction_metadata is not None:
        data["interaction_metadata"] = m.interaction_metadata
    return data


def error(code: int, message: str, errors: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return body


def form_error(path: str, code: str, message: str) -> dict[str, Any]:
    """The nested ``errors`` object of a 50035 Invalid Form Body, e.g. path ``"content"``."""
    node: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path.split(".")):
        node = {part: node}
    return node
