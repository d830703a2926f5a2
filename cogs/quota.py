"""Credits: `/quota` for members and the `/quota-admin` group for moderators.

Every answer is ephemeral and pings nobody. Moderator commands are hidden with
`default_member_permissions` (Manage Server) *and* checked again here, because a server can
hand a hidden command to anyone through its integration settings.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.moderation import MAX_ROLE_ALLOWANCE
from bot.core.pricing import price_credits
from bot.discord.accounts import (
    PERIOD_WORDS,
    LedgerPageButton,
    balance_lines,
    credits_text,
    ledger_line,
    render_log_page,
    short_balance,
)
from bot.discord.checks import defer_private, ensure_moderator, guild_id_of, role_ids_of
from bot.discord.tree import UserFacingError, send_ephemeral

if TYPE_CHECKING:
    from bot.discord.bot import VideoBot
    from storage.models import Period

log = logging.getLogger(__name__)

MAX_CREDITS = 1_000_000_000  # far above any real allowance; keeps SQLite integers sane
SHOW_RECENT = 5
# The yardstick quoted next to the guild's typical price, so members can compare.
REFERENCE_MODEL = "vidu-q3-pro-i2v"
REFERENCE_RESOLUTION = "720p"
REFERENCE_SECONDS = 5
REFERENCE_LABEL = "a 5 s 720p Vidu Q3 Pro video"
PERIOD_CHOICES = [
    app_commands.Choice(name="day", value="day"),
    app_commands.Choice(name="week", value="week"),
    app_commands.Choice(name="month", value="month"),
    app_commands.Choice(name="none (never resets)", value="none"),
]


# --- /quota -------------------------------------------------------------------------------------


class Quota(commands.Cog):
    """A member's own credits."""

    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot

    @app_commands.command(name="quota", description="Your video credits on this server")
    @app_commands.guild_only()
    async def quota(self, interaction: discord.Interaction[VideoBot]) -> None:
        guild_id = guild_id_of(interaction)
        await defer_private(interaction)
        moderation = self.bot.core.moderation
        balance = await moderation.balance(
            guild_id, interaction.user.id, role_ids_of(interaction.user)
        )
        typical = await moderation.typical_price(guild_id)
        reference = price_credits(
            REFERENCE_MODEL, REFERENCE_RESOLUTION, REFERENCE_SECONDS, False, self.bot.settings
        )
        lines = ["**Your video credits on this server**", *balance_lines(balance)]
        lines.append(
            f"A typical video here costs about **{credits_text(typical)}** credits "
            f"({REFERENCE_LABEL}: {credits_text(reference)})."
        )
        if balance.blocked:
            lines.append("Ask a moderator if you think this is a mistake.")
        await send_ephemeral(interaction, "\n".join(lines))


# --- /quota-admin -------------------------------------------------------------------------------


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class QuotaAdmin(
    commands.GroupCog,
    group_name="quota-admin",
    group_description="Moderators: members' video credits",
):
    """Moderators give, take and inspect credits; every change is a ledger row naming them."""

    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(LedgerPageButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(LedgerPageButton)

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        return ensure_moderator(interaction)

    @app_commands.command(name="set", description="Set a member's credits per period")
    @app_commands.describe(
        member="the member",
        credits="credits per period (0 or more); leave empty with unlimited off = server default",
        unlimited="true: no limit for this member (leave credits empty)",
    )
    async def set_(
        self,
        interaction: discord.Interaction[VideoBot],
        member: discord.Member | discord.User,
        credits: app_commands.Range[int, 0, MAX_CREDITS] | None = None,
        unlimited: bool = False,
    ) -> None:
        guild_id = guild_id_of(interaction)
        if unlimited and credits is not None:
            raise UserFacingError(
                "Give either `credits` or `unlimited: True`, not both; nothing was changed."
            )
        await defer_private(interaction)
        moderation = self.bot.core.moderation
        actor, roles = interaction.user.id, role_ids_of(member)
        if unlimited:
            balance = await moderation.set_allowance(guild_id, member.id, None, actor, roles)
            said = f"{member.mention} now has unlimited credits."
        elif credits is None:
            balance = await moderation.clear_allowance(guild_id, member.id, actor, roles)
            said = f"{member.mention} follows the server default again."
        else:
            balance = await moderation.set_allowance(guild_id, member.id, credits, actor, roles)
            said = f"{member.mention} now has {credits_text(credits)} credits per period."
        await send_ephemeral(interaction, f"{said} {short_balance(balance)}")

    @app_commands.command(name="grant", description="Give (or take back) one-time bonus credits")
    @app_commands.describe(
        member="the member",
        credits="bonus credits to add; a negative number takes unused bonus away",
        reason="why (kept in the ledger)",
    )
    async def grant(
        self,
        interaction: discord.Interaction[VideoBot],
        member: discord.Member | discord.User,
        credits: app_commands.Range[int, -MAX_CREDITS, MAX_CREDITS],
        reason: app_commands.Range[str, 1, 200],
    ) -> None:
        guild_id = guild_id_of(interaction)
        if credits == 0:
            raise UserFacingError("Give a number of credits other than 0; nothing was changed.")
        await defer_private(interaction)
        balance = await self.bot.core.moderation.grant_bonus(
            guild_id, member.id, credits, reason, interaction.user.id, role_ids_of(member)
        )
        said = (
            f"Granted {credits_text(credits)} bonus credits to {member.mention}."
            if credits > 0
            else f"Took unused bonus credits back from {member.mention}."
        )
        await send_ephemeral(interaction, f"{said} {short_balance(balance)}")

    @app_commands.command(
        name="reset", description="Give a member a fresh period (usage back to 0)"
    )
    @app_commands.describe(member="the member")
    async def reset(
        self, interaction: discord.Interaction[VideoBot], member: discord.Member | discord.User
    ) -> None:
        guild_id = guild_id_of(interaction)
        await defer_private(interaction)
        balance = await self.bot.core.moderation.reset_usage(
            guild_id, member.id, interaction.user.id, role_ids_of(member)
        )
        await send_ephemeral(
            interaction,
            f"Reset this period's usage of {member.mention}. {short_balance(balance)}",
        )

    @app_commands.command(name="block", description="Stop a member from making videos")
    @app_commands.describe(member="the member")
    async def block(
        self, interaction: discord.Interaction[VideoBot], member: discord.Member | discord.User
    ) -> None:
        guild_id = guild_id_of(interaction)
        await defer_private(interaction)
        await self.bot.core.moderation.block(guild_id, member.id, interaction.user.id)
        await send_ephemeral(
            interaction, f"Blocked {member.mention}: no new videos (running jobs finish)."
        )

    @app_commands.command(name="unblock", description="Let a blocked member make videos again")
    @app_commands.describe(member="the member")
    async def unblock(
        self, interaction: discord.Interaction[VideoBot], member: discord.Member | discord.User
    ) -> None:
        guild_id = guild_id_of(interaction)
        await defer_private(interaction)
        await self.bot.core.moderation.unblock(guild_id, member.id, interaction.user.id)
        await send_ephemeral(interaction, f"Unblocked {member.mention}.")

    @app_commands.command(
        name="default", description="Set this server's default credits and period"
    )
    @app_commands.describe(
        credits="credits each member gets per period (0 or more)",
        period="how often the credits renew; none = never (one-time allowance)",
    )
    @app_commands.choices(period=PERIOD_CHOICES)
    async def default(
        self,
        interaction: discord.Interaction[VideoBot],
        credits: app_commands.Range[int, 0, MAX_CREDITS],
        period: app_commands.Choice[str],
    ) -> None:
        guild_id = guild_id_of(interaction)
        await defer_private(interaction)
        await self.bot.core.moderation.set_guild_default(
            guild_id, credits, cast("Period", period.value), interaction.user.id
        )
        await send_ephemeral(
            interaction,
            f"Default allowance: {credits_text(credits)} credits {PERIOD_WORDS[period.value]}. "
            "Members with their own setting keep it.",
        )

    @app_commands.command(
        name="role", description="Give members with a role their own credits per period"
    )
    @app_commands.describe(
        role="the role",
        credits="credits per period for its members, instead of the server default (0 or more)",
    )
    async def role(
        self,
        interaction: discord.Interaction[VideoBot],
        role: discord.Role,
        credits: app_commands.Range[int, 0, MAX_ROLE_ALLOWANCE],
    ) -> None:
        guild_id = guild_id_of(interaction)
        if role.is_default():
            raise UserFacingError(
                "Every member has @everyone: set the server default with "
                "`/quota-admin default` instead. Nothing was changed."
            )
        await defer_private(interaction)
        settings = await self.bot.core.moderation.set_role_allowance(
            guild_id, role.id, credits, interaction.user.id
        )
        await send_ephemeral(
            interaction,
            f"Members with {role.mention} now get {credits_text(credits)} credits "
            f"{PERIOD_WORDS[settings.period]} (the largest of their roles counts; a member's "
            "own setting still wins).",
        )

    @app_commands.command(name="role-remove", description="A role no longer has its own credits")
    @app_commands.describe(role="the role")
    async def role_remove(
        self, interaction: discord.Interaction[VideoBot], role: discord.Role
    ) -> None:
        guild_id = guild_id_of(interaction)
        await defer_private(interaction)
        await self.bot.core.moderation.remove_role_allowance(guild_id, role.id, interaction.user.id)
        await send_ephemeral(
            interaction,
            f"Members with {role.mention} follow the server default again "
            "(or another role's allowance).",
        )

    @app_commands.command(name="show", description="A member's balance and recent ledger rows")
    @app_commands.describe(member="the member")
    async def show(
        self, interaction: discord.Interaction[VideoBot], member: discord.Member | discord.User
    ) -> None:
        guild_id = guild_id_of(interaction)
        await defer_private(interaction)
        moderation = self.bot.core.moderation
        balance = await moderation.balance(guild_id, member.id, role_ids_of(member))
        recent = await moderation.ledger(guild_id, member.id, page=0, per_page=SHOW_RECENT)
        lines = [
            f"**Credits of {member.mention}**",
            *balance_lines(balance),
            "",
            "**Recent ledger rows**",
        ]
        if recent.entries:
            lines.extend(ledger_line(entry) for entry in recent.entries)
        else:
            lines.append("None yet.")
        await send_ephemeral(interaction, "\n".join(lines))

    @app_commands.command(name="log", description="The credit ledger, newest first, page by page")
    @app_commands.describe(
        member="only this member's rows (leave empty for the whole server)",
        page="page to start at (1 = newest)",
    )
    async def log(
        self,
        interaction: discord.Interaction[VideoBot],
        member: discord.Member | discord.User | None = None,
        page: app_commands.Range[int, 1, 100_000] = 1,
    ) -> None:
        guild_id = guild_id_of(interaction)
        await defer_private(interaction)
        content, view = await render_log_page(
            self.bot,
            guild_id,
            member.id if member else None,
            interaction.user.id,
            page - 1,
        )
        await send_ephemeral(interaction, content, view=view)


async def setup(bot: VideoBot) -> None:
    await bot.add_cog(Quota(bot))
    await bot.add_cog(QuotaAdmin(bot))
