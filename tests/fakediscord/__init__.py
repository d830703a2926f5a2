"""A fake Discord (REST v10 + gateway on 127.0.0.1) for end-to-end tests of the bot.

async with FakeDiscord() as fake:
    guild = fake.add_guild("Test")
    member = fake.add_member(guild.id, "alice")
    async with fake.running(bot):
        inter = await fake.invoke_slash(guild.id, guild.default_channel_id, member, "video animate",
                                        options={"image": AttachmentSpec("cat.png", "image/png",
                                                                         width=512, height=512)})
        await inter.wait_response()
"""

from __future__ import annotations

from .interactions import AttachmentSpec, FakeInteraction, InteractionEvent
from .models import (
    ADMINISTRATOR,
    ATTACH_FILES,
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    EMBED_LINKS,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    MANAGE_GUILD,
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
    StoredAttachment,
    StoredMessage,
    UploadedFile,
)
from .server import DiscordError, FakeDiscord

__all__ = [
    "ADMINISTRATOR",
    "ATTACH_FILES",
    "DEFAULT_BOT_PERMISSIONS",
    "DEFAULT_EVERYONE_PERMISSIONS",
    "EMBED_LINKS",
    "FLAG_EPHEMERAL",
    "FLAG_LOADING",
    "MANAGE_GUILD",
    "SEND_MESSAGES",
    "VIEW_CHANNEL",
    "AttachmentSpec",
    "CommandSync",
    "DiscordError",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "FakeMember",
    "FakeRole",
    "FakeUser",
    "Fault",
    "InteractionEvent",
    "Overwrite",
    "RecordedRequest",
    "StoredAttachment",
    "StoredMessage",
    "UploadedFile",
]
