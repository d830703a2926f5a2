"""Discord delivery adapter: draws job cards and posts finished videos.

Everything here posts through ordinary channel messages (never the interaction token, which
dies after 15 minutes), so a job that takes hours still ends on its card. Mentions are off
everywhere except the requester on the message that hands them their video.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import discord

from bot.api.errors import (
    DownloadError,
    DownloadTooLargeError,
    TaskNotFoundError,
    VideoAPIError,
)
from bot.catalog import CATALOG
from bot.delivery import DeliveryOutcome
from storage.models import CHARGED_STATES, RELEASED_STATES, JobState

if TYPE_CHECKING:
    from bot.api.client import Download
    from bot.discord_app import VideoBot
    from storage.models import Job

log = logging.getLogger(__name__)

REROLL_TEMPLATE = r"reroll:(?P<job_id>[0-9]+)"
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # unboosted servers and DMs
# An earlier post of the same video is looked for among the messages since the video was
# made (less this margin, for clocks that disagree)...
HISTORY_MARGIN = dt.timedelta(minutes=1)
# ...up to this many of them (10 pages): a post lands at a delivery attempt, and the early
# attempts come closest together.
HISTORY_SCAN_LIMIT = 1000
# Where the finish time is unknown (a job finished by an older version): the newest few.
HISTORY_SCAN_FALLBACK = 50
# What a dead signed link answers (expired, revoked, gone): worth one fresh link.
DEAD_LINK_STATUSES = frozenset({401, 403, 404, 410})

STATE_LOOK: dict[JobState, tuple[str, discord.Colour]] = {
    JobState.SUBMITTING: ("Submitting", discord.Colour.light_grey()),
    JobState.QUEUED: ("Queued", discord.Colour.blurple()),
    JobState.PROCESSING: ("Rendering", discord.Colour.blue()),
    JobState.SUCCEEDED: ("Finished, posting the video", discord.Colour.teal()),
    JobState.DELIVERED: ("Done", discord.Colour.green()),
    JobState.FAILED: ("Failed", discord.Colour.red()),
    JobState.REJECTED: ("Refused by the video service", discord.Colour.red()),
    JobState.LOST: ("Lost", discord.Colour.dark_grey()),
    JobState.UNDELIVERABLE: ("Finished, but I could not post it", discord.Colour.orange()),
    JobState.EXPIRED: ("Timed out", discord.Colour.dark_grey()),
}
# How the bot's own messages about job {id} are found again in a channel's or DM's history
# ("job #1" must not match "job #12").
DELIVERY_MARKER = r"\bjob #{id}(?![0-9])"
ENDING_MARKER = r"\bjob #{id} ended:"
# A request to Discord that broke off without an answer: it may or may not have landed.
CONNECTION_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)


def reroll_custom_id(job_id: int) -> str:
    return f"reroll:{job_id}"


def requester_only(user_id: int) -> discord.AllowedMentions:
    """The one mention the bot ever allows: the member whose video it is."""
    return discord.AllowedMentions(
        everyone=False, roles=False, replied_user=False, users=[discord.Object(user_id)]
    )


def progress_bar(percent: int, width: int = 12) -> str:
    filled = max(0, min(width, round(percent / 100 * width)))
    return "▰" * filled + "▱" * (width - filled)


def describe_parameters(job: Job) -> str:
    params = job.params
    parts = [f"{params.get('duration', 5)} s", str(params.get("resolution", "720p"))]
    for key, label in (
        ("aspect_ratio", ""),
        ("style", "style "),
        ("movement_amplitude", "movement "),
        ("audio_type", "audio "),
    ):
        if params.get(key):
            parts.append(f"{label}{params[key]}")
    if params.get("seed") is not None:
        parts.append(f"seed {params['seed']}")
    if params.get("off_peak"):
        parts.append("off-peak")
    if params.get("bgm"):
        parts.append("music")
    if params.get("subjects"):
        parts.append(f"{len(params['subjects'])} subject(s)")
    if params.get("audio") and isinstance(params["audio"], str):
        parts.append("custom music")
    return " · ".join(parts)


def what_happened(job: Job) -> str:
    """Why a job ended (or is stuck), and whether its credits came back, said once."""
    reason = job.failure_reason or "The video could not be made."
    if job.state in RELEASED_STATES and "returned" not in reason:
        reason += f" The {job.price} credits were returned to you."
    return reason


def job_card(job: Job) -> discord.Embed:
    """The public card of a job: who asked, what, for how much, and how far along it is."""
    title, colour = STATE_LOOK.get(job.state, (job.state.value.title(), discord.Colour.default()))
    prompt = str(job.params.get("prompt") or "").strip() or "*(no prompt)*"
    if len(prompt) > 1000:
        prompt = prompt[:999] + "…"
    embed = discord.Embed(title=f"Video job #{job.id} · {title}", description=prompt, colour=colour)
    spec = CATALOG.get(job.model)
    embed.add_field(name="Requested by", value=f"<@{job.user_id}>", inline=True)
    embed.add_field(name="Model", value=spec.label if spec else job.model, inline=True)
    price_note = (
        "returned"
        if job.state in RELEASED_STATES
        else "charged"
        if job.state in CHARGED_STATES
        else "held"
    )
    embed.add_field(name="Price", value=f"{job.price} credits ({price_note})", inline=True)
    embed.add_field(name="Parameters", value=describe_parameters(job), inline=False)
    if job.state in {JobState.SUBMITTING, JobState.QUEUED, JobState.PROCESSING}:
        line = f"{progress_bar(job.progress)} {job.progress}%"
        if job.eta:
            finish = discord.utils.utcnow() + dt.timedelta(seconds=job.eta)
            line += f" · ready {discord.utils.format_dt(finish, 'R')}"
        elif job.off_peak:
            line += " · off-peak: may take hours"
        embed.add_field(name="Progress", value=line, inline=False)
    if job.failure_reason and job.state is not JobState.DELIVERED:
        embed.add_field(name="What happened", value=what_happened(job)[:1024], inline=False)
    if job.reroll_of:
        embed.set_footer(text=f"Re-roll of job #{job.reroll_of}")
    embed.timestamp = job.created_at
    return embed


def reroll_button(job_id: int) -> discord.ui.Button[Any]:
    """The `Re-roll` button under a result; `cogs.video.RerollButton` answers its clicks."""
    return discord.ui.Button(
        label="Re-roll",
        emoji="🎲",
        style=discord.ButtonStyle.secondary,
        custom_id=reroll_custom_id(job_id),
    )


def result_view(job_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(reroll_button(job_id))
    return view


def link_expired(job: Job, margin: float = 60.0) -> bool:
    expires = job.result_expires_at
    return expires is not None and expires <= discord.utils.utcnow() + dt.timedelta(seconds=margin)


def expiry_text(job: Job) -> str:
    if job.result_expires_at is None:
        return "The link may expire soon."
    return f"The link expires {discord.utils.format_dt(job.result_expires_at, 'R')}."


class DiscordDelivery:
    """`bot.delivery.Delivery` for Discord."""

    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot
        # job id → (when its card was last edited, the (state, percent) it shows; None when
        # that edit failed and must be made again)
        self._last_edit: dict[int, tuple[float, tuple[JobState, int] | None]] = {}
        # The newest state of each card whose edit the interval held back.
        self._held: dict[int, Job] = {}
        # Jobs whose ending was told by DM (no card), so it is not looked up again.
        self._ending_told: set[int] = set()

    # --- job cards ------------------------------------------------------------------------

    async def job_changed(self, job: Job) -> None:
        if job.card_message_id is None:
            # No card to show it on (its post failed): an ending that gave the credits back
            # is told by DM, or the member would never hear of it.
            if job.state in RELEASED_STATES:
                await self._tell_ending_by_dm(job)
            return
        now = time.monotonic()
        drawn = (job.state, job.progress)
        last = self._last_edit.get(job.id)
        # At most one edit per card per interval, so a busy poller cannot run into Discord's
        # rate limits. What the interval holds back is drawn when it has passed
        # (`redraws_due`); an ending is never held back.
        if last is not None and not job.state.is_terminal:
            if last[1] == drawn:
                self._held.pop(job.id, None)
                return
            if now - last[0] < self.bot.settings.card_edit_interval_seconds:
                self._held[job.id] = job
                return
        self._held.pop(job.id, None)
        self._last_edit[job.id] = (now, drawn)
        channel = self.bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        try:
            await channel.get_partial_message(job.card_message_id).edit(
                embed=job_card(job), allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException as error:
            log.info("job %s: card not updated (%s %s)", job.id, error.status, error.code)
            if error.status == 429 or error.status >= 500:
                self._retry_edit_later(job, now)
                return
            if job.state in RELEASED_STATES and error.status in (403, 404):
                # The card was deleted, or its channel is gone or closed to the bot.
                self._last_edit.pop(job.id, None)
                await self._tell_ending_by_dm(job)
                return
        except CONNECTION_ERRORS as error:
            log.info("job %s: card not updated (%r)", job.id, error)
            self._retry_edit_later(job, now)
            return
        if job.state.is_terminal:
            self._last_edit.pop(job.id, None)  # nothing more will be drawn on this card

    async def _tell_ending_by_dm(self, job: Job) -> None:
        """DM the requester, once, that their job ended without a video (credits returned)."""
        if job.id in self._ending_told:
            return
        title, _colour = STATE_LOOK[job.state]
        text = f"Your video job #{job.id} ended: {title}.\n{what_happened(job)}"
        try:
            dm = await self.bot.create_dm(discord.Object(job.user_id))
            earlier = await self._find_earlier_post(dm, job, marker=ENDING_MARKER)
            if earlier is None:
                await dm.send(
                    text,
                    allowed_mentions=discord.AllowedMentions.none(),
                    # Its own nonce: neither the channel post's nor the delivery DM's.
                    nonce=f"vidu-end-{job.id}",
                )
        except CONNECTION_ERRORS as error:
            log.info("job %s: ending not sent by DM (%r); will try again", job.id, error)
            self._retry_edit_later(job, time.monotonic())
            return
        except discord.HTTPException as error:
            if error.status == 429 or error.status >= 500:
                log.info("job %s: ending not sent by DM (%s); will try again", job.id, error.status)
                self._retry_edit_later(job, time.monotonic())
                return
            # DMs closed: the ending is still in /video history and /video status.
            log.info("job %s: ending not sent by DM (%s %s)", job.id, error.status, error.code)
        self._ending_told.add(job.id)
        self._held.pop(job.id, None)
        self._last_edit.pop(job.id, None)

    def _retry_edit_later(self, job: Job, now: float) -> None:
        self._last_edit[job.id] = (now, None)
        self._held.setdefault(job.id, job)  # unless a newer state is already waiting

    def redraws_due(self) -> list[Job]:
        interval = self.bot.settings.card_edit_interval_seconds
        now = time.monotonic()
        return [
            job
            for job_id, job in self._held.items()
            if now - self._last_edit.get(job_id, (0.0, None))[0] >= interval
        ]

    # --- delivery -------------------------------------------------------------------------

    async def deliver(self, job: Job) -> DeliveryOutcome:
        # How many attempts are made, and how far apart, is the poller's business.
        channel = self.bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        try:
            earlier = await self._find_earlier_post(channel, job, after=job.card_message_id)
        except discord.NotFound:
            return await self._deliver_by_dm(job, "The channel you used is gone.")
        except discord.Forbidden:
            earlier = None  # no Read Message History here: the message nonce still guards
        except discord.HTTPException as error:
            return DeliveryOutcome.retry(f"Discord {error.status} while checking history")
        except CONNECTION_ERRORS as error:
            return DeliveryOutcome.retry(
                f"no answer from Discord while checking history ({error!r})"
            )
        if earlier is not None:
            log.info("job %s: already posted as message %s", job.id, earlier)
            return DeliveryOutcome.delivered(earlier)

        renewed = False
        if link_expired(job):
            try:
                job = await self._renew_link(job)
            except VideoAPIError as error:
                return self._renewal_failed(error)
            renewed = True
        limit = min(self.upload_limit(job.guild_id), self.bot.settings.max_video_bytes)
        try:
            return await self._post_in_channel(channel, job, limit, renewed=renewed)
        except (discord.NotFound, discord.Forbidden):
            return await self._deliver_by_dm(job, "I could not post in the channel you used.")
        except discord.HTTPException as error:
            return DeliveryOutcome.retry(f"Discord {error.status}/{error.code}")
        except CONNECTION_ERRORS as error:
            # The post may have landed: the next attempt finds it (history) or Discord
            # hands it back (nonce) instead of posting it twice.
            return DeliveryOutcome.retry(f"no answer from Discord while posting ({error!r})")

    def upload_limit(self, guild_id: int) -> int:
        """The largest file this guild accepts: as Discord last told us, else by boost tier."""
        known = self.bot.upload_limits.get(guild_id)
        if known:
            return known
        guild = self.bot.get_guild(guild_id)
        return guild.filesize_limit if guild is not None else DEFAULT_UPLOAD_LIMIT

    @staticmethod
    def _renewal_failed(error: VideoAPIError) -> DeliveryOutcome:
        if isinstance(error, TaskNotFoundError):
            return DeliveryOutcome.undeliverable(
                "The video's link expired before it could be posted."
            )
        return DeliveryOutcome.retry(f"could not renew the video link: {error}")

    async def _download(self, job: Job, limit: int, *, renewed: bool) -> tuple[Job, Download]:
        """The video, through a fresh link once if the stored one is dead.

        A link whose expiry the service did not state (TTL "0") is only found dead here.
        Raises DownloadError (incl. too large) or, when renewing fails, VideoAPIError.
        """
        try:
            return job, await self.bot.api.download(job.result_url or "", max_bytes=limit)
        except DownloadTooLargeError:
            raise
        except DownloadError as error:
            if renewed or error.status not in DEAD_LINK_STATUSES:
                raise
            log.info("job %s: the video link answered %s; renewing it", job.id, error.status)
        job = await self._renew_link(job)
        return job, await self.bot.api.download(job.result_url or "", max_bytes=limit)

    async def _renew_link(self, job: Job) -> Job:
        """Ask the video service for a fresh signed link to a finished video."""
        assert job.task_id is not None
        result = await self.bot.api.task_result(job.task_id)
        renewed = await self.bot.service.renew_result_link(job.id, result)
        log.info("job %s: video link renewed", job.id)
        return renewed

    async def _post_in_channel(
        self, channel: discord.PartialMessageable, job: Job, limit: int, *, renewed: bool
    ) -> DeliveryOutcome:
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

        def link() -> str:
            # Built when needed: the link may have been renewed on the way.
            return (
                f"{headline}\nIt is too large to upload here; download it: {job.result_url}\n"
                f"{expiry_text(job)}"
            )

        try:
            job, download = await self._download(job, limit, renewed=renewed)
        except DownloadTooLargeError:
            return DeliveryOutcome.delivered((await post(link())).id)
        except DownloadError as error:
            return DeliveryOutcome.retry(f"download failed: {error}")
        except VideoAPIError as error:  # from renewing the link
            return self._renewal_failed(error)
        try:
            file = discord.File(download.path, filename=f"vidu-job-{job.id}.mp4")
            message = await post(headline, file)
        except discord.HTTPException as error:
            if error.status != 413 and error.code != 40005:
                raise
            message = await post(link())
        finally:
            with contextlib.suppress(OSError):
                download.path.unlink()
        return DeliveryOutcome.delivered(message.id)

    async def _find_earlier_post(
        self,
        channel: discord.abc.Messageable,
        job: Job,
        after: int | None = None,
        marker: str = DELIVERY_MARKER,
    ) -> int | None:
        """A post of this job's video (or, with ENDING_MARKER, of its ending) made before a
        crash, if there is one.

        The nonce stops a repeat within Discord's few-minute window; this check covers a
        retry or restart that comes later than that. It reads the messages since the job
        finished (an earlier post cannot be older), however busy the channel was before.
        Only the bot's own posts about the job name it in their text (the card's title is
        in its embed).
        """
        me = self.bot.user
        if me is None:
            return None
        pattern = re.compile(marker.format(id=job.id))
        start: int | None = after
        limit = HISTORY_SCAN_FALLBACK
        if job.finished_at is not None:
            since = discord.utils.time_snowflake(job.finished_at - HISTORY_MARGIN)
            start = max(start or 0, since)
            limit = HISTORY_SCAN_LIMIT
        # From `start` on, oldest first; without one, the newest `limit` messages.
        history = channel.history(limit=limit, after=discord.Object(start) if start else None)
        async for message in history:
            if message.author.id == me.id and pattern.search(message.content):
                return message.id
        return None

    async def _deliver_by_dm(self, job: Job, why: str) -> DeliveryOutcome:
        try:
            dm = await self.bot.create_dm(discord.Object(job.user_id))
            earlier = await self._find_earlier_post(dm, job)
            if earlier is not None:
                return DeliveryOutcome.delivered(earlier)
            message = await dm.send(
                f"Your video (job #{job.id}) is ready. {why}\n{job.result_url}\n{expiry_text(job)}",
                # Not the channel post's nonce: Discord would hand that message back instead.
                nonce=f"vidu-dm-{job.id}",
            )
        except CONNECTION_ERRORS as error:
            return DeliveryOutcome.retry(f"no answer from Discord on DM ({error!r})")
        except discord.HTTPException as error:
            if error.status >= 500 or error.status == 429:
                return DeliveryOutcome.retry(f"Discord {error.status} on DM")
            return DeliveryOutcome.undeliverable(
                "I could not post in the channel or message you; "
                "the video is in /video history while its link lives."
            )
        return DeliveryOutcome.delivered(message.id)
