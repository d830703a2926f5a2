"""Starting a job from an interaction, the same way for a slash command and a Re-roll click:
refuse where the bot could not show the result, submit through the core, put up the card,
and tell the member what happened."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord

from bot.discord.cards import waiting_text
from bot.discord.checks import role_ids_of
from bot.discord.tree import UserFacingError
from storage.models import CardState, Job, JobState

if TYPE_CHECKING:
    from bot.discord.bot import VideoBot

log = logging.getLogger(__name__)

# Quick tries of a card post that broke off (the same nonce each time: no duplicate).
CARD_RETRY_PAUSES = (0.5, 1.5)


def check_can_post(interaction: discord.Interaction[VideoBot]) -> None:
    """Refuse, before anything is spent, where the bot could not show the card or the video."""
    permissions = interaction.app_permissions
    in_thread = isinstance(interaction.channel, discord.Thread)
    needed = {
        "View Channel": permissions.view_channel,
        "Send Messages in Threads" if in_thread else "Send Messages": (
            permissions.send_messages_in_threads if in_thread else permissions.send_messages
        ),
        "Embed Links": permissions.embed_links,
        "Attach Files": permissions.attach_files,
        # To find a post cut off mid-upload again, instead of posting it twice.
        "Read Message History": permissions.read_message_history,
    }
    missing = [name for name, granted in needed.items() if not granted]
    if missing:
        raise UserFacingError(
            f"I can't post videos in this channel: I am missing {', '.join(missing)}. "
            "Ask a moderator to give me that here, or use another channel.",
            code="bot_permissions",
        )


async def start_job(
    interaction: discord.Interaction[VideoBot], submit: Callable[[], Awaitable[Job]]
) -> Job:
    """Charge and submit (by `submit`, the core's), then put up the public job card.

    Refusals propagate to the command tree, which words them; nothing is spent then.
    """
    bot = interaction.client
    assert interaction.guild_id is not None
    check_can_post(interaction)
    bot.upload_limits[interaction.guild_id] = interaction.filesize_limit
    job = await submit()
    if job.state is JobState.REJECTED:
        raise UserFacingError(
            f"{job.failure_reason or 'The video service refused this request.'} "
            "No credits were spent."
        )
    # From here the job exists and its credits are held: whatever fails below must not
    # tell the member to try again (that would pay for a second video).
    card_link, card_state = await post_card(interaction, job)
    if bot.poller is not None:
        bot.poller.wake()
    lines = [f"Job #{job.id} is on its way: {job.price} credits held."]
    try:
        balance = await bot.core.moderation.balance(
            interaction.guild_id, interaction.user.id, role_ids_of(interaction.user)
        )
        left = "unlimited" if balance.available is None else f"{balance.available} credits"
        lines[0] = f"Job #{job.id} is on its way: {job.price} credits held, {left} left."
    except Exception:
        log.exception("job %s: balance not shown", job.id)
    waiting = waiting_text(job)
    if waiting is not None:
        lines.append(f"{job.failure_reason or ''} {waiting}".strip())
    if card_link:
        lines.append(f"Follow it on its card: {card_link}")
    elif card_state == "none":
        lines.append("I could not put up its card here, so I will tell you by direct message.")
    else:
        lines.append("Its card will appear in this channel in a moment.")
    try:
        await interaction.followup.send("\n".join(lines), ephemeral=True)
    except discord.HTTPException:
        log.warning("job %s: submitted, but the confirmation did not reach the member", job.id)
    return job


async def post_card(
    interaction: discord.Interaction[VideoBot], job: Job
) -> tuple[str | None, CardState]:
    """Put up the job's public card (a couple of quick tries): its link (None when it is not
    up) and where the card stands.

    A card whose post breaks off may have landed: each try carries the same nonce, so
    Discord hands back the card that landed. One that still cannot be confirmed stays
    pending and the poller finds it again (or posts it) shortly.
    """
    bot = interaction.client
    delivery, lifecycle = bot.delivery, bot.core.lifecycle
    if delivery is None:
        return None, job.card_state
    outcome = await delivery.post_card(job, first=True)
    for pause in CARD_RETRY_PAUSES:
        if outcome.kind != "retry" or (outcome.retry_after or 0.0) > CARD_RETRY_PAUSES[-1]:
            break  # a longer wait is the poller's, not the command's (and a stop's)
        await asyncio.sleep(max(pause, outcome.retry_after or 0.0))
        outcome = await delivery.post_card(job, first=True)
    if outcome.kind == "undeliverable":
        return None, (await lifecycle.no_card(job.id)).card_state
    if outcome.kind == "retry" or outcome.message_id is None:
        return None, "pending"
    posted = await lifecycle.card_posted(job.id, outcome.message_id, shows=job.state)
    # The poller may have moved the job while the card was being posted, before it had a
    # card to draw on: draw the state it has now.
    if posted.state is not job.state and bot.poller is not None:
        bot.poller.announce(posted)
    link = f"https://discord.com/channels/{job.guild_id}/{job.channel_id}/{outcome.message_id}"
    return link, posted.card_state
