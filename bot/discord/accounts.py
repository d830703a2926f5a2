"""How credits read on Discord: balances, ledger rows and pages of the ledger with their
Previous/Next buttons (the buttons carry their page in their custom id, so they work
across restarts and in any process)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord

from bot.discord.checks import guild_id_of, is_moderator
from bot.discord.tree import Guarded, send_ephemeral
from bot.discord.wording import mentions
from storage.models import SYSTEM_ACTOR

if TYPE_CHECKING:
    from bot.discord.bot import VideoBot
    from storage.models import Balance, LedgerEntry

LOG_PER_PAGE = 10
REASON_WIDTH = 80  # ledger reasons are cut so a page of rows stays under the message limit
MESSAGE_LIMIT = 2000
PERIOD_WORDS = {"day": "per day", "week": "per week", "month": "per month", "none": "one-time"}
NOT_A_MODERATOR = "Only moderators (Manage Server) can use this command."


def credits_text(amount: int | None) -> str:
    return "unlimited" if amount is None else f"{amount:,}"


def short_balance(balance: Balance) -> str:
    """The one number a moderator wants after a change: what the member can spend now."""
    blocked = " (blocked)" if balance.blocked else ""
    return f"Available now: {credits_text(balance.available)}{blocked}."


def allowance_left(balance: Balance) -> int | None:
    """Credits of the period allowance still free (None = unlimited)."""
    if balance.allowance is None:
        return None
    return max(balance.allowance - balance.used, 0)


def allowance_source(balance: Balance) -> str:
    """Where a member's allowance comes from, in words."""
    if balance.allowance_source == "member":
        return "their own setting" if balance.allowance is not None else "their own (unlimited)"
    if balance.allowance_source == "role" and balance.allowance_role_id is not None:
        return f"the role <@&{balance.allowance_role_id}>"
    return "the server default"


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
            f"Left this period: **{credits_text(left)}** of "
            f"{credits_text(balance.allowance)} ({period})"
        )
    lines.append(f"Allowance from: {allowance_source(balance)}")
    lines.append(f"Held by running jobs: {credits_text(balance.held)}")
    lines.append(f"Bonus: {credits_text(balance.bonus)}")
    if balance.available is not None:
        lines.append(f"Available now: **{credits_text(balance.available)}**")
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
    reason = mentions(" ".join(entry.reason.split()).replace("`", "'"))
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
