"""Who is asking, and may they: checks and helpers shared by the commands and buttons."""

from __future__ import annotations

import logging
from typing import Any, Literal

import discord
from discord import app_commands

log = logging.getLogger(__name__)


def is_moderator(interaction: discord.Interaction[Any]) -> bool:
    """Manage Server (or Administrator) in the channel where the interaction happened.

    `interaction.permissions` is what Discord computed for this member in this channel,
    overwrites included, so it holds even without the members intent.
    """
    if interaction.guild_id is None:
        return False
    permissions = interaction.permissions
    return permissions.manage_guild or permissions.administrator


def ensure_moderator(interaction: discord.Interaction[Any]) -> Literal[True]:
    """Raise the check failure the command tree turns into "only moderators"."""
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()
    if not is_moderator(interaction):
        log.info(
            "refused moderator command to user %s in guild %s",
            interaction.user.id,
            interaction.guild_id,
        )
        raise app_commands.MissingPermissions(["manage_guild"])
    return True


def guild_id_of(interaction: discord.Interaction[Any]) -> int:
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()
    return interaction.guild_id


async def defer_private(interaction: discord.Interaction[Any]) -> None:
    # SQLite under load can take longer than Discord's 3 s; a deferred answer never times out.
    if not interaction.response.is_done():
        await interaction.response.defer(ephemeral=True, thinking=True)


def role_ids_of(user: discord.Member | discord.User) -> tuple[int, ...]:
    """The roles a member holds here, for role allowances (a User outside a guild: none).

    From the interaction's member data, so no privileged intent is needed; a role deleted
    from the server is no longer in it, so it stops counting.
    """
    if not isinstance(user, discord.Member):
        return ()
    return tuple(role.id for role in user.roles if not role.is_default())
