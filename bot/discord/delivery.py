"""Delivery through Discord: job cards redrawn as jobs move, finished videos posted once.

Everything here posts through ordinary channel messages (never the interaction token,
which dies after 15 minutes), so a job that takes hours still ends on its card. Mentions
are off everywhere except the requester on the message that hands them their video.
What a failed request means is `bot.discord.failures.classify`'s call, not this file's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import discord

from bot.api.errors import DownloadError, TaskNotFoundError, VideoAPIError
from bot.core.delivery import DeliveryOutcome
from bot.core.quota import utcnow
from bot.core.videos import Videos
from bot.discord.buttons import result_view
from bot.discord.cards import (
    CARD_TITLE,
    STATE_LOOK,
    UNDER_WAY,
    expiry_text,
    job_card,
    requester_only,
    shown_progress,
    what_happened,
)
from bot.discord.failures import DISCORD_FAILURES, classify
from storage.models import RELEASED_STATES, Job, JobState

if TYPE_CHECKING:
    from bot.api.client import Download

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # unboosted servers and DMs
# An earlier post of the same video is looked for among the messages since the video was
# made (less this margin, for clocks that disagree)...
HISTORY_MARGIN = dt.timedelta(minutes=1)
# ...up to this many of them (10 pages): a post lands at a delivery attempt, and the early
# attempts come closest together.
HISTORY_SCAN_LIMIT = 1000
# Where the finish time is unknown (a job finished by an older version): the newest few.
HISTORY_SCAN_FALLBACK = 50
# How the bot's own messages about job {id} are found again in a channel's or DM's history
# ("job #1" must not match "job #12"): the video post and the ending by DM in their text,
# the card in its embed's title.
DELIVERY_MARKER = r"\bjob #{id}(?![0-9])"
ENDING_MARKER = r"\bjob #{id} ended:"
CARD_MARKER = "^" + CARD_TITLE
# Discord de-duplicates a nonce for about five minutes; past that only history can tell
# whether a post that broke off landed (this margin short of it, to be safe).
NONCE_WINDOW = dt.timedelta(minutes=4)
# A rendering job's bar, moved by the time between reads, is redrawn when it has moved this
# many points, at most every this many seconds: a few edits per job, well inside Discord's
# rate limits.
MOVING_STEP = 10
MOVING_EDIT_SECONDS = 15.0


class DiscordDelivery:
    """`bot.core.delivery.Delivery` for Discord."""

    def __init__(
        self,
        client: discord.Client,
        videos: Videos,
        upload_limits: Mapping[int, int],
        *,
        card_edit_interval: float,
        max_video_bytes: int,
    ) -> None:
        self._client = client
        self._videos = videos
        # The largest file each guild accepts, as its latest interaction said (boosts
        # change it): the commands fill it in.
        self._upload_limits = upload_limits
        self._card_edit_interval = card_edit_interval
        self._max_video_bytes = max_video_bytes
        # job id → (when its card was last edited, the (state, percent) it shows; None when
        # that edit failed and must be made again)
        self._last_edit: dict[int, tuple[float, tuple[JobState, int] | None]] = {}
        # The newest state of each card whose edit the interval held back.
        self._held: dict[int, Job] = {}
        # Jobs whose ending was told by DM (no card), so it is not looked up again.
        self._ending_told: set[int] = set()
        # Rendering jobs as last drawn, whose bar moves with the time between reads.
        self._moving: dict[int, Job] = {}

    # --- job cards ------------------------------------------------------------------------

    async def post_card(self, job: Job, *, first: bool = False) -> DeliveryOutcome:
        channel = self._client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        if not first:
            try:
                earlier = await self._find_earlier_post(
                    channel, job, since=job.created_at, marker=CARD_MARKER, in_embed=True
                )
            except DISCORD_FAILURES as error:
                failure = classify(error)
                if failure.kind in ("gone", "forbidden"):
                    return DeliveryOutcome.undeliverable(failure.detail)
                return DeliveryOutcome.retry(failure.detail, after=failure.retry_after)
            if earlier is not None:
                log.info("job %s: card found again as message %s", job.id, earlier)
                return DeliveryOutcome.delivered(earlier)
        try:
            card = await channel.send(
                embed=job_card(job),
                allowed_mentions=discord.AllowedMentions.none(),
                # Discord hands back the card that landed if an answer was lost in the way.
                nonce=f"vidu-card-{job.id}",
            )
        except DISCORD_FAILURES as error:
            failure = classify(error)
            log.info("job %s: card not posted (%s)", job.id, failure.detail)
            if failure.kind in ("gone", "forbidden"):
                return DeliveryOutcome.undeliverable(failure.detail)
            return DeliveryOutcome.retry(failure.detail, after=failure.retry_after)
        return DeliveryOutcome.delivered(card.id)

    async def job_changed(self, job: Job) -> bool:
        if job.card_message_id is None:
            if job.card_state == "pending":
                return False  # posting the card draws the job as it is then
            # There can be no card: an ending that gave the credits back is told by DM, as
            # the member was promised; a video reaches them by DM when it is delivered.
            if job.state in RELEASED_STATES:
                return await self._tell_ending_by_dm(job)
            return True
        now = time.monotonic()
        drawn = (job.state, shown_progress(job, utcnow()))
        last = self._last_edit.get(job.id)
        # At most one edit per card per interval, so a busy poller cannot run into Discord's
        # rate limits. What the interval holds back is drawn when it has passed
        # (`redraws_due`); an ending is never held back.
        if last is not None and not job.state.is_terminal:
            shown = last[1]
            if shown is not None and shown[0] is job.state and drawn[1] - shown[1] < MOVING_STEP:
                # Its bar moved less than a step: not worth an edit (between reads it moves
                # by itself, a step at a time: `redraws_due`).
                self._held.pop(job.id, None)
                return True
            if now - last[0] < self._card_edit_interval:
                self._held[job.id] = job
                return False
        self._held.pop(job.id, None)
        self._last_edit[job.id] = (now, drawn)
        channel = self._client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        try:
            await channel.get_partial_message(job.card_message_id).edit(
                embed=job_card(job), allowed_mentions=discord.AllowedMentions.none()
            )
        except DISCORD_FAILURES as error:
            failure = classify(error)
            log.info("job %s: card not updated (%s)", job.id, failure.detail)
            if failure.kind == "retry":
                self._retry_edit_later(job, now)
                return False
            self._moving.pop(job.id, None)
            if job.state.is_terminal:
                self._last_edit.pop(job.id, None)
            # (Otherwise the edit stays counted: a card that is gone is not asked for
            # again at every change, only once an interval.)
            if job.state in RELEASED_STATES:
                # The card was deleted, or its channel is gone or closed to the bot.
                return await self._tell_ending_by_dm(job)
            return True  # nowhere to show it: the video itself still finds the member
        if job.state.is_terminal:
            self._last_edit.pop(job.id, None)  # nothing more will be drawn on this card
        if job.state in UNDER_WAY and job.expected_at is not None:
            self._moving[job.id] = job  # its bar moves between reads: redrawn now and then
        else:
            self._moving.pop(job.id, None)
        return True

    async def _tell_ending_by_dm(self, job: Job) -> bool:
        """DM the requester, once, that their job ended without a video (credits returned).
        Whether that is done (DMs closed counts: it is still in /video history)."""
        if job.id in self._ending_told:
            return True
        title, _colour = STATE_LOOK[job.state]
        text = f"Your video job #{job.id} ended: {title}.\n{what_happened(job)}"
        try:
            dm = await self._client.create_dm(discord.Object(job.user_id))
            earlier = await self._find_earlier_post(
                dm, job, since=job.finished_at, marker=ENDING_MARKER
            )
            if earlier is None:
                await dm.send(
                    text,
                    allowed_mentions=discord.AllowedMentions.none(),
                    # Its own nonce: neither the channel post's nor the delivery DM's.
                    nonce=f"vidu-end-{job.id}",
                )
        except DISCORD_FAILURES as error:
            failure = classify(error)
            log.info("job %s: ending not sent by DM (%s)", job.id, failure.detail)
            if failure.kind == "retry":
                self._retry_edit_later(job, time.monotonic())
                return False
            # DMs closed: the ending is still in /video history and /video status.
        self._ending_told.add(job.id)
        self._held.pop(job.id, None)
        self._last_edit.pop(job.id, None)
        self._moving.pop(job.id, None)
        return True

    def _retry_edit_later(self, job: Job, now: float) -> None:
        self._last_edit[job.id] = (now, None)
        self._held.setdefault(job.id, job)  # unless a newer state is already waiting

    def redraws_due(self) -> list[Job]:
        now = time.monotonic()
        due = [
            job
            for job_id, job in self._held.items()
            if now - self._last_edit.get(job_id, (0.0, None))[0] >= self._card_edit_interval
        ]
        # A moving bar is redrawn when it has moved a step, at most every MOVING_EDIT_SECONDS.
        wall = utcnow()
        for job_id, job in list(self._moving.items()):
            edited_at, drawn = self._last_edit.get(job_id, (0.0, None))
            if drawn is None or job_id in self._held:
                continue
            spacing = max(self._card_edit_interval, MOVING_EDIT_SECONDS)
            if now - edited_at >= spacing and shown_progress(job, wall) - drawn[1] >= MOVING_STEP:
                due.append(job)
        return due

    # --- delivery -------------------------------------------------------------------------

    def upload_limit(self, guild_id: int) -> int:
        """The largest file this guild accepts: as Discord last told us, else by boost tier."""
        known = self._upload_limits.get(guild_id)
        if known:
            return known
        guild = self._client.get_guild(guild_id)
        return guild.filesize_limit if guild is not None else DEFAULT_UPLOAD_LIMIT

    async def deliver(self, job: Job) -> DeliveryOutcome:
        # How many attempts are made, and how far apart, is the poller's business.
        if job.card_state == "none":
            # The member was told the job would reach them by direct message.
            return await self._deliver_by_dm(job, "I could not post its card in your channel.")
        channel = self._client.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        try:
            earlier = await self._find_earlier_post(
                channel, job, after=job.card_message_id, since=job.finished_at
            )
        except DISCORD_FAILURES as error:
            failure = classify(error)
            if failure.kind == "gone":
                return await self._deliver_by_dm(job, "The channel you used is gone.")
            if failure.kind != "forbidden":
                return DeliveryOutcome.retry(
                    f"{failure.detail} while checking history", after=failure.retry_after
                )
            uncertain = job.delivery_uncertain_at
            if uncertain is not None and utcnow() - uncertain > NONCE_WINDOW:
                # An earlier post broke off and may be in the channel; without Read Message
                # History nothing can tell, and the nonce no longer guards: never post twice.
                return await self._deliver_by_dm(
                    job, "I could not check whether it reached your channel, so here it is."
                )
            earlier = None  # the nonce still guards a repeat this soon
        if earlier is not None:
            log.info("job %s: already posted as message %s", job.id, earlier)
            return DeliveryOutcome.delivered(earlier)

        limit = min(self.upload_limit(job.guild_id), self._max_video_bytes)
        try:
            job, download = await self._videos.fetch(job, limit, utcnow())
        except DownloadError as error:
            return DeliveryOutcome.retry(f"download failed: {error}")
        except VideoAPIError as error:  # from renewing the link
            if isinstance(error, TaskNotFoundError):
                return DeliveryOutcome.undeliverable(
                    "The video's link expired before it could be posted."
                )
            return DeliveryOutcome.retry(f"could not renew the video link: {error}")
        try:
            message = await self._post_in_channel(channel, job, download)
        except DISCORD_FAILURES as error:
            failure = classify(error)
            if failure.kind in ("gone", "forbidden"):
                return await self._deliver_by_dm(job, "I could not post in the channel you used.")
            # The post may have landed: the next attempt finds it (history) or Discord
            # hands it back (nonce) instead of posting it twice.
            return DeliveryOutcome.retry(
                failure.detail, after=failure.retry_after, maybe_landed=failure.maybe_landed
            )
        finally:
            if download is not None:
                with contextlib.suppress(OSError):
                    download.path.unlink()
        return DeliveryOutcome.delivered(message.id)

    async def _post_in_channel(
        self, channel: discord.PartialMessageable, job: Job, download: Download | None
    ) -> discord.Message:
        """The video as a reply to the card; a link instead when it is too large."""
        headline = f"<@{job.user_id}> your video is ready · job #{job.id}"

        async def post(content: str, file: discord.File | None = None) -> discord.Message:
            extra: dict[str, Any] = {}
            if file is not None:
                extra["file"] = file
            if job.card_message_id:
                extra["reference"] = discord.MessageReference(
                    message_id=job.card_message_id,
                    channel_id=job.channel_id,
                    fail_if_not_exists=False,
                )
            # One nonce for every form of this post: Discord hands back the first that landed.
            return await channel.send(
                content,
                allowed_mentions=requester_only(job.user_id),
                nonce=f"vidu-job-{job.id}",
                view=result_view(job.id),
                **extra,
            )

        link = (
            f"{headline}\nIt is too large to upload here; download it: {job.result_url}\n"
            f"{expiry_text(job)}"
        )
        if download is None:
            return await post(link)
        try:
            return await post(
                headline, discord.File(download.path, filename=f"vidu-job-{job.id}.mp4")
            )
        except DISCORD_FAILURES as error:
            if classify(error).kind != "too_large":
                raise
            return await post(link)

    async def _find_earlier_post(
        self,
        channel: discord.abc.Messageable,
        job: Job,
        after: int | None = None,
        since: dt.datetime | None = None,
        marker: str = DELIVERY_MARKER,
        *,
        in_embed: bool = False,
    ) -> int | None:
        """A post about this job made before a crash or a lost answer, if there is one: its
        video (DELIVERY_MARKER), its ending by DM (ENDING_MARKER) or its card (CARD_MARKER,
        `in_embed`: the card's title is in its embed).

        The nonce stops a repeat within Discord's few-minute window; this check covers a
        retry or restart that comes later than that. It reads the messages since `since`
        (an earlier post cannot be older), however busy the channel was before. Only the
        bot's own posts about the job name it.
        """
        me = self._client.user
        if me is None:
            return None
        pattern = re.compile(marker.format(id=job.id))
        start: int | None = after
        limit = HISTORY_SCAN_FALLBACK
        if since is not None:
            start = max(start or 0, discord.utils.time_snowflake(since - HISTORY_MARGIN))
            limit = HISTORY_SCAN_LIMIT
        # From `start` on, oldest first; without one, the newest `limit` messages.
        history = channel.history(limit=limit, after=discord.Object(start) if start else None)
        async for message in history:
            if message.author.id != me.id:
                continue
            texts = (
                [embed.title or "" for embed in message.embeds] if in_embed else [message.content]
            )
            if any(pattern.search(text) for text in texts):
                return message.id
        return None

    async def _deliver_by_dm(self, job: Job, why: str) -> DeliveryOutcome:
        try:
            dm = await self._client.create_dm(discord.Object(job.user_id))
            earlier = await self._find_earlier_post(dm, job, since=job.finished_at)
            if earlier is not None:
                return DeliveryOutcome.delivered(earlier)
            message = await dm.send(
                f"Your video (job #{job.id}) is ready. {why}\n{job.result_url}\n{expiry_text(job)}",
                # Not the channel post's nonce: Discord would hand that message back instead.
                nonce=f"vidu-dm-{job.id}",
            )
        except DISCORD_FAILURES as error:
            failure = classify(error)
            if failure.kind == "retry":
                return DeliveryOutcome.retry(f"{failure.detail} on DM", after=failure.retry_after)
            return DeliveryOutcome.undeliverable(
                "I could not post in the channel or message you; "
                "the video is in /video history while its link lives."
            )
        return DeliveryOutcome.delivered(message.id)
