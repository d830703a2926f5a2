"""Credits: `/quota` for members and the `/quota-admin` group for moderators.

Every answer is ephemeral and pings nobody. Moderator commands are hidden with
`default_member_permissions` (Manage Server) *and* checked again here, because a server can
hand a hidden command to anyone through its integration settings.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.pricing import price_credits
from bot.discord.tree import Guarded, UserFacingError, send_ephemeral
from bot.discord.wording import channel_mentions
from cogs.common import defer_private, ensure_moderator, guild_id_of, is_moderator
from storage.models import SYSTEM_ACTOR

if TYPE_CHECKING:
    from bot.discord.bot import VideoBot
    from storage.models import Balance, LedgerEntry, Period

log = logging.getLogger(__name__)

MAX_CREDITS = 1_000_000_000  # far above any real allowance; keeps SQLite integers sane
LOG_PER_PAGE = 10
SHOW_RECENT = 5
REASON_WIDTH = 80  # ledger reasons are cut so a page of rows stays under the message limit
MESSAGE_LIMIT = 2000
# The yardstick quoted next to the guild's typical price, so members can compare.
REFERENCE_MODEL = "vidu-q3-pro-i2v"
REFERENCE_RESOLUTION = "720p"
REFERENCE_SECONDS = 5
REFERENCE_LABEL = "a 5 s 720p Vidu Q3 Pro video"
PERIOD_WORDS = {"day": "per day", "week": "per week", "month": "per month", "none": "one-time"}
PERIOD_CHOICES = [
    app_commands.Choice(name="day", value="day"),
    app_commands.Choice(name="week", value="week"),
    app_commands.Choice(name="month", value="month"),
    app_commands.Choice(name="none (never resets)", value="none"),
]
NOT_A_MODERATOR = "Only moderators (Manage Server) can use this command."


# --- rendering ---------------------------------------------------------------------------------


def _credits(amount: int | None) -> str:
    return "unlimited" if amount is None else f"{amount:,}"


def short_balance(balance: Balance) -> str:
    """The one number a moderator wants after a change: what the member can spend now."""
    blocked = " (blocked)" if balance.blocked else ""
    return f"Available now: {_credits(balance.available)}{blocked}."


def allowance_left(balance: Balance) -> int | None:
    """Credits of the period allowance still free (None = unlimited)."""
    if balance.allowance is None:
        return None
    return max(balance.allowance - balance.used, 0)


def balance_lines(balance: Balance) -> list[str]:
    """The numbers of one balance, the same for a member and for a moderator."""
    left = allowance_left(balance)
    period = PERIOD_WORDS.get(str(balance.period), str(balance.period))
    lines: list[str] = []
    if balance.blocked:
        lines.append("**Blocked**: no new videos on this server.")
    if left is None:
        lines.append("Left this period: **unlimited**")
    else:
        lines.append(
            f"Left this period: **{_credits(left)}** of {_credits(balance.allowance)} ({period})"
        )
    lines.append(f"Held by running jobs: {_credits(balance.held)}")
    lines.append(f"Bonus: {_credits(balance.bonus)}")
    if balance.available is not None:
        lines.append(f"Available now: **{_credits(balance.available)}**")
    if balance.resets_at is not None:
        lines.append(
            "Period resets "
            f"{discord.utils.format_dt(balance.resets_at, 'R')} "
            f"({discord.utils.format_dt(balance.resets_at, 'f')})"
        )
    elif balance.allowance is not None:
        lines.append("The allowance does not reset.")
    return lines


MONEY_KINDS = {"hold", "commit", "release", "grant", "reset"}


def ledger_line(entry: LedgerEntry, *, with_member: bool = True) -> str:
    """One ledger row on one line: when, whom, what, how much, who did it and why."""
    parts = [f"`#{entry.id}`", discord.utils.format_dt(entry.created_at, "f")]
    if with_member:
        parts.append("server" if entry.user_id is None else f"<@{entry.user_id}>")
    parts.append(f"**{entry.kind}**")
    # Settings rows (set, default, block) carry their meaning in the reason, not the amount.
    if entry.kind in MONEY_KINDS:
        parts.append(f"{entry.amount:+,}")
        if entry.pool:
            parts.append(f"({entry.pool})")
    if entry.job_id is not None:
        parts.append(f"job {entry.job_id}")
    parts.append("by system" if entry.actor == SYSTEM_ACTOR else f"by <@{entry.actor}>")
    reason = channel_mentions(" ".join(entry.reason.split()).replace("`", "'"))
    if reason:
        if len(reason) > REASON_WIDTH:
            reason = reason[: REASON_WIDTH - 1] + "…"
        parts.append(f"— {reason}")
    return " ".join(parts)


def fit(lines: list[str], limit: int = MESSAGE_LIMIT) -> str:
    """Join lines, dropping trailing ones (with a note) rather than exceed Discord's limit."""
    text = "\n".join(lines)
    while len(text) > limit and len(lines) > 1:
        lines = lines[:-1]
        text = "\n".join([*lines, "…"])
    return text[:limit]


def ledger_text(
    title: str, entries: list[LedgerEntry], page: int, pages: int, *, with_member: bool = True
) -> str:
    header = f"**{title}** — page {page + 1} of {max(pages, 1)}"
    if not entries:
        return f"{header}\nNo ledger rows yet."
    return fit([header, *(ledger_line(entry, with_member=with_member) for entry in entries)])


# --- ledger paging buttons -----------------------------------------------------------------------


class LedgerPageButton(
    Guarded,
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"qlog:(?P<dir>[pn]):(?P<moderator>[0-9]+):(?P<member>[0-9]+):(?P<page>[0-9]+)",
):
    """Previous/Next under a `/quota-admin log` page.

    Everything needed to draw the target page sits in the custom id, so the buttons need no
    in-memory view and keep working after a restart. Only the moderator who asked may use
    them, and they must still be a moderator.
    """

    def __init__(
        self,
        direction: str,
        moderator_id: int,
        member_id: int,
        page: int,
        *,
        disabled: bool = False,
    ) -> None:
        self.direction = direction
        self.moderator_id = moderator_id
        self.member_id = member_id  # 0 = the whole server
        self.page = page
        super().__init__(
            discord.ui.Button(
                label="Previous" if direction == "p" else "Next",
                emoji="◀️" if direction == "p" else "▶️",
                style=discord.ButtonStyle.secondary,
                custom_id=f"qlog:{direction}:{moderator_id}:{member_id}:{page}",
                disabled=disabled,
            )
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> LedgerPageButton:
        return cls(match["dir"], int(match["moderator"]), int(match["member"]), int(match["page"]))

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        if interaction.user.id != self.moderator_id:
            await send_ephemeral(
                interaction, "Only the moderator who asked for this log can page it."
            )
            return False
        if not is_moderator(interaction):
            await send_ephemeral(interaction, NOT_A_MODERATOR)
            return False
        return True

    async def run(self, interaction: discord.Interaction[VideoBot]) -> None:
        content, view = await render_log_page(
            interaction.client,
            guild_id_of(interaction),
            self.member_id or None,
            self.moderator_id,
            self.page,
        )
        await interaction.response.edit_message(
            content=content, view=view, allowed_mentions=discord.AllowedMentions.none()
        )


async def render_log_page(
    bot: VideoBot, guild_id: int, member_id: int | None, moderator_id: int, page: int
) -> tuple[str, discord.ui.View]:
    result = await bot.core.moderation.ledger(guild_id, member_id, page=page, per_page=LOG_PER_PAGE)
    pages = max(result.pages, 1)
    current = min(max(result.page, 0), pages - 1)
    title = f"Credit ledger of <@{member_id}>" if member_id else "Credit ledger of this server"
    content = ledger_text(
        title, list(result.entries), current, pages, with_member=member_id is None
    )
    view = discord.ui.View(timeout=None)
    target_member = member_id or 0
    view.add_item(
        LedgerPageButton(
            "p", moderator_id, target_member, max(current - 1, 0), disabled=current <= 0
        )
    )
    view.add_item(
        LedgerPageButton(
            "n",
            moderator_id,
            target_member,
            min(current + 1, pages - 1),
            disabled=current >= pages - 1,
        )
    )
    return content, view


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
        balance = await moderation.balance(guild_id, interaction.user.id)
        typical = await moderation.typical_price(guild_id)
        reference = price_credits(
            REFERENCE_MODEL, REFERENCE_RESOLUTION, REFERENCE_SECONDS, False, self.bot.settings
        )
        lines = ["**Your video credits on this server**", *balance_lines(balance)]
        lines.append(
            f"A typical video here costs about **{_credits(typical)}** credits "
            f"({REFERENCE_LABEL}: {_credits(reference)})."
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
        actor = interaction.user.id
        if unlimited:
            balance = await moderation.set_allowance(guild_id, member.id, None, actor)
            said = f"{member.mention} now has unlimited credits."
        elif credits is None:
            balance = await moderation.clear_allowance(guild_id, member.id, actor)
            said = f"{member.mention} follows the server default again."
        else:
            balance = await moderation.set_allowance(guild_id, member.id, credits, actor)
            said = f"{member.mention} now has {_credits(credits)} credits per period."
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
            guild_id, member.id, credits, reason, interaction.user.id
        )
        said = (
            f"Granted {_credits(credits)} bonus credits to {member.mention}."
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
            guild_id, member.id, interaction.user.id
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
            f"Default allowance: {_credits(credits)} credits {PERIOD_WORDS[period.value]}. "
            "Members with their own setting keep it.",
        )

    @app_commands.command(name="show", description="A member's balance and recent ledger rows")
    @app_commands.describe(member="the member")
    async def show(
        self, interaction: discord.Interaction[VideoBot], member: discord.Member | discord.User
    ) -> None:
        guild_id = guild_id_of(interaction)
        await defer_private(interaction)
        moderation = self.bot.core.moderation
        balance = await moderation.balance(guild_id, member.id)
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
