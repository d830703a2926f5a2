"""`/video-settings`: where and how members of one server may make videos (moderators only).

Like `/quota-admin`, the group is hidden with `default_member_permissions` (Manage Server)
and the permission is checked again in code. Every change goes through the job service,
which writes a ledger row naming the moderator.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.catalog import CATALOG
from bot.discord.checks import defer_private, ensure_moderator, guild_id_of
from bot.discord.tree import UserFacingError, send_ephemeral

if TYPE_CHECKING:
    from bot.discord.bot import VideoBot
    from storage.models import GuildSettings

log = logging.getLogger(__name__)

MAX_ALLOWED_CHANNELS = 50  # Discord lists at most a few hundred channels; 50 keeps `show` short
MAX_DAILY_CAP = 1_000_000_000
# Channels where a member can run a slash command: threads and voice/stage text chats too,
# but not categories or forums (a forum's posts are threads, allowed one by one).
COMMAND_CHANNEL_TYPES = [
    discord.ChannelType.text,
    discord.ChannelType.news,
    discord.ChannelType.voice,
    discord.ChannelType.stage_voice,
    discord.ChannelType.public_thread,
    discord.ChannelType.private_thread,
    discord.ChannelType.news_thread,
]
MODEL_CHOICES = [
    app_commands.Choice(name=spec.label[:100], value=name) for name, spec in CATALOG.items()
]


class CommandChannel(app_commands.Transformer):
    """A channel option limited to channels that can hold a slash command; yields its id.

    Only the id is needed, so the option works without the channel in the bot's cache.
    Discord's client already offers only these channel types; anything else sent anyway
    becomes 0, which the command refuses in words.
    """

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.channel

    @property
    def channel_types(self) -> list[discord.ChannelType]:
        return COMMAND_CHANNEL_TYPES

    async def transform(self, interaction: discord.Interaction[Any], value: Any, /) -> int:
        if getattr(value, "type", None) not in COMMAND_CHANNEL_TYPES:
            return 0
        return int(value.id)


def settings_text(settings: GuildSettings, guild: discord.Guild | None = None) -> str:
    """The server's settings; role allowances of roles `guild` no longer has are left out
    (they no longer count)."""
    if settings.allowed_channels:
        channels = ", ".join(f"<#{channel}>" for channel in settings.allowed_channels)
    else:
        channels = "every channel"
    if settings.enabled_models is None:
        models = "all (" + ", ".join(f"`{name}`" for name in CATALOG) + ")"
    elif settings.enabled_models:
        models = ", ".join(f"`{name}`" for name in settings.enabled_models)
    else:
        models = "none (members cannot make videos)"
    cap = "none" if settings.daily_cap is None else f"{settings.daily_cap:,} credits per UTC day"
    period = "never resets" if settings.period == "none" else f"per {settings.period}"
    roles = [
        f"<@&{role}> {credits:,}"
        for role, credits in sorted(settings.role_allowances.items(), key=lambda kv: -kv[1])
        if guild is None or guild.get_role(role) is not None
    ]
    return "\n".join(
        [
            "**Video settings of this server**",
            f"Channels: {channels}",
            f"Running jobs per member: {settings.max_concurrent}",
            f"Models: {models}",
            f"Daily cap for the server: {cap}",
            f"Default allowance: {settings.allowance:,} credits {period}",
            "Role allowances (credits "
            + ("in all" if settings.period == "none" else f"per {settings.period}")
            + "; the largest of a member's roles counts, their own setting wins): "
            + (", ".join(roles) if roles else "none"),
        ]
    )


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class ServerSettings(
    commands.GroupCog,
    group_name="video-settings",
    group_description="Moderators: where and how members make videos",
):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        return ensure_moderator(interaction)

    async def _reply(self, interaction: discord.Interaction[VideoBot], first_line: str) -> None:
        settings = await self.bot.core.moderation.guild_settings(guild_id_of(interaction))
        text = settings_text(settings, interaction.guild)
        await send_ephemeral(interaction, f"{first_line}\n\n{text}")

    @app_commands.command(
        name="channels", description="Choose the channels where video commands work"
    )
    @app_commands.describe(
        action="add: allow this channel · remove: stop allowing it · all: allow every channel",
        channel="the channel (needed for add and remove)",
    )
    @app_commands.choices(
        action=[
            app_commands.Choice(name="add (allow this channel)", value="add"),
            app_commands.Choice(name="remove (stop allowing this channel)", value="remove"),
            app_commands.Choice(name="all (allow every channel again)", value="all"),
        ]
    )
    async def channels(
        self,
        interaction: discord.Interaction[VideoBot],
        action: app_commands.Choice[str],
        channel: app_commands.Transform[int, CommandChannel] | None = None,
    ) -> None:
        guild_id = guild_id_of(interaction)
        if action.value in {"add", "remove"} and channel is None:
            raise UserFacingError(f"Pick the `channel` to {action.value}.")
        if channel == 0:
            raise UserFacingError("Pick a text channel, a voice or stage chat, or a thread.")
        await defer_private(interaction)
        moderation = self.bot.core.moderation
        before = await moderation.guild_settings(guild_id)
        current = list(before.allowed_channels)
        if action.value == "all":
            allowed: list[int] = []
            said = "Video commands now work in every channel."
        elif action.value == "add":
            assert channel is not None
            if channel in current:
                raise UserFacingError(f"<#{channel}> is already allowed.")
            if len(current) >= MAX_ALLOWED_CHANNELS:
                raise UserFacingError(
                    f"At most {MAX_ALLOWED_CHANNELS} channels can be listed; remove one first."
                )
            allowed = [*current, channel]
            said = (
                f"Video commands now work in <#{channel}>."
                if current
                else f"Video commands now work only in <#{channel}>."
            )
        else:
            assert channel is not None
            if not current:
                raise UserFacingError(
                    "Every channel is allowed; `add` the channels you want instead of removing one."
                )
            if channel not in current:
                raise UserFacingError(f"<#{channel}> is not in the list.")
            allowed = [known for known in current if known != channel]
            if not allowed:
                # An empty list means "every channel": the opposite of what removing means.
                raise UserFacingError(
                    f"<#{channel}> is the only allowed channel; removing it would allow every "
                    "channel. `add` another channel first, or choose `all`."
                )
            said = f"<#{channel}> removed."
        await moderation.update_guild_settings(
            guild_id, interaction.user.id, allowed_channels=allowed, expected=before
        )
        await self._reply(interaction, said)

    @app_commands.command(
        name="concurrency", description="How many jobs one member may run at once"
    )
    @app_commands.describe(jobs="running jobs per member (1–50)")
    async def concurrency(
        self,
        interaction: discord.Interaction[VideoBot],
        jobs: app_commands.Range[int, 1, 50],
    ) -> None:
        guild_id = guild_id_of(interaction)
        await defer_private(interaction)
        await self.bot.core.moderation.update_guild_settings(
            guild_id, interaction.user.id, max_concurrent=jobs
        )
        await self._reply(interaction, f"Members may now run {jobs} job(s) at once.")

    @app_commands.command(name="models", description="Enable or disable a video model")
    @app_commands.describe(
        model="the model", enabled="true: members may use it · false: they may not"
    )
    @app_commands.choices(model=MODEL_CHOICES)
    async def models(
        self,
        interaction: discord.Interaction[VideoBot],
        model: app_commands.Choice[str],
        enabled: bool,
    ) -> None:
        guild_id = guild_id_of(interaction)
        await defer_private(interaction)
        moderation = self.bot.core.moderation
        before = await moderation.guild_settings(guild_id)
        current = before.enabled_models
        chosen = set(CATALOG) if current is None else set(current) & set(CATALOG)
        if enabled:
            chosen.add(model.value)
        else:
            chosen.discard(model.value)
        # "All of them" is stored as None so that models added to the catalog later are on too.
        new: list[str] | None = (
            None if chosen >= set(CATALOG) else [name for name in CATALOG if name in chosen]
        )
        state = "enabled" if enabled else "disabled"
        if new == current:
            raise UserFacingError(f"`{model.value}` is already {state}; nothing was changed.")
        await moderation.update_guild_settings(
            guild_id, interaction.user.id, enabled_models=new, expected=before
        )
        said = f"`{model.value}` is now {state}."
        await self._reply(interaction, said)

    @app_commands.command(
        name="daily-cap", description="Cap the credits this server may spend per UTC day"
    )
    @app_commands.describe(
        credits="credits per UTC day for the whole server; leave empty to remove the cap"
    )
    async def daily_cap(
        self,
        interaction: discord.Interaction[VideoBot],
        credits: app_commands.Range[int, 0, MAX_DAILY_CAP] | None = None,
    ) -> None:
        guild_id = guild_id_of(interaction)
        await defer_private(interaction)
        await self.bot.core.moderation.update_guild_settings(
            guild_id, interaction.user.id, daily_cap=credits
        )
        said = (
            "The server has no daily cap now."
            if credits is None
            else f"The server may now spend at most {credits:,} credits per UTC day."
        )
        await self._reply(interaction, said)

    @app_commands.command(name="show", description="Show this server's video settings")
    async def show(self, interaction: discord.Interaction[VideoBot]) -> None:
        guild_id = guild_id_of(interaction)
        await defer_private(interaction)
        settings = await self.bot.core.moderation.guild_settings(guild_id)
        await send_ephemeral(interaction, settings_text(settings, interaction.guild))


async def setup(bot: VideoBot) -> None:
    await bot.add_cog(ServerSettings(bot))
