"""The Re-roll button under every finished video: same request, new seed, charged to
whoever clicks. Its state is in its custom id, so it works across restarts and in any
process; the core does the re-roll, this file only wires the click to it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import discord

from bot.discord.attachments import LinkRefresher
from bot.discord.checks import role_ids_of
from bot.discord.starting import start_job
from bot.discord.tree import Guarded

if TYPE_CHECKING:
    from bot.discord.bot import VideoBot

REROLL_TEMPLATE = r"reroll:(?P<job_id>[0-9]+)"


def reroll_custom_id(job_id: int) -> str:
    return f"reroll:{job_id}"


def reroll_button(job_id: int) -> discord.ui.Button[Any]:
    return discord.ui.Button(
        label="Re-roll",
        emoji="🎲",
        style=discord.ButtonStyle.secondary,
        custom_id=reroll_custom_id(job_id),
    )


def result_view(job_id: int) -> discord.ui.View:
    """What goes under a posted video: its Re-roll button."""
    view = discord.ui.View(timeout=None)
    view.add_item(reroll_button(job_id))
    return view


class RerollButton(
    Guarded, discord.ui.DynamicItem[discord.ui.Button[Any]], template=REROLL_TEMPLATE
):
    def __init__(self, job_id: int) -> None:
        super().__init__(reroll_button(job_id))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> RerollButton:
        return cls(int(match["job_id"]))

    async def run(self, interaction: discord.Interaction[VideoBot]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        bot = interaction.client
        assert interaction.guild_id is not None and interaction.channel_id is not None
        guild_id, channel_id = interaction.guild_id, interaction.channel_id
        await start_job(
            interaction,
            lambda: bot.core.submitting.reroll(
                self.job_id,
                guild_id=guild_id,
                channel_id=channel_id,
                user_id=interaction.user.id,
                refresh_inputs=LinkRefresher(bot.http),
                role_ids=role_ids_of(interaction.user),
            ),
        )
