"""`/video`: make a video (animate, reference), follow it (status, history), re-roll it."""

from __future__ import annotations

import logging
import random
import re
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
from discord import app_commands
from discord.app_commands import Choice, Range
from discord.ext import commands

from bot.api.models import ASPECT_RATIOS, MOVEMENTS, RESOLUTIONS, SEED_MAX, STYLES
from bot.catalog import models_of_kind
from bot.delivery_discord import REROLL_TEMPLATE, expiry_text, job_card, reroll_button
from bot.discord_app import RESTARTING, report_error, send_ephemeral
from bot.errors import UserFacingError
from bot.inputs import (
    AttachedFile,
    check_audio,
    check_image,
    check_subject_references,
    parse_voices,
)
from bot.jobs import SubmitRequest
from cogs.common import is_moderator
from storage.models import CHARGED_STATES, InputRef, JobState

if TYPE_CHECKING:
    from bot.discord_app import VideoBot
    from storage.models import Job

log = logging.getLogger(__name__)

RESOLUTION_CHOICES = [Choice(name=r, value=r) for r in RESOLUTIONS]
ASPECT_CHOICES = [Choice(name=a, value=a) for a in ASPECT_RATIOS]
STYLE_LABELS = {"general": "general (realistic)"}
STYLE_CHOICES = [Choice(name=STYLE_LABELS.get(s, s), value=s) for s in STYLES]
MOVEMENT_CHOICES = [Choice(name=m, value=m) for m in MOVEMENTS]
ANIMATE_MODELS = [
    Choice(name=spec.label, value=spec.name) for spec in models_of_kind("image-to-video")
]
REFERENCE_MODELS = [spec.name for spec in models_of_kind("reference-to-video")]
DEFAULT_ANIMATE_MODEL = "vidu-q3-pro-i2v"
LINK_CHECK_TIMEOUT = aiohttp.ClientTimeout(total=15)


def attached(option: str, attachment: discord.Attachment) -> AttachedFile:
    return AttachedFile(
        option=option,
        filename=attachment.filename,
        url=attachment.url,
        content_type=attachment.content_type,
        size=attachment.size,
        width=attachment.width,
        height=attachment.height,
        attachment_id=attachment.id,
    )


def input_ref(kind: str, file: AttachedFile, subject: int | None = None) -> InputRef:
    return InputRef(
        kind=kind,
        url=file.url,
        filename=file.filename,
        content_type=file.content_type or "",
        size=file.size,
        width=file.width,
        height=file.height,
        subject=subject,
        attachment_id=file.attachment_id,
    )


def without_none(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


@app_commands.guild_only()
class Video(commands.GroupCog, group_name="video", group_description="Make videos with Vidu"):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot
        self._rerolling: set[tuple[int, int]] = set()  # (job, member) re-rolls being submitted
        super().__init__()

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(RerollButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(RerollButton)

    # --- making videos --------------------------------------------------------------------

    @app_commands.command(name="animate", description="Turn one image into a video (Vidu Q3)")
    @app_commands.describe(
        image="the picture to animate: JPEG, PNG or WebP, at least 128×128 px",
        prompt="what should happen in the video (up to 1500 characters)",
        duration="length in seconds (1–16)",
        resolution="output resolution (higher costs more)",
        aspect_ratio="shape of the video",
        style="general (realistic) or anime",
        seed="a number to repeat a result; leave empty for a random one",
        off_peak="queue for off-peak processing: cheaper, may take hours",
        music="background music: MP3, WAV, M4A or FLAC, up to 20 MB",
        model="Q3 Pro (best) or Q3 Turbo (cheaper)",
    )
    @app_commands.choices(
        resolution=RESOLUTION_CHOICES,
        aspect_ratio=ASPECT_CHOICES,
        style=STYLE_CHOICES,
        model=ANIMATE_MODELS,
    )
    async def animate(
        self,
        interaction: discord.Interaction[VideoBot],
        image: discord.Attachment,
        prompt: Range[str, 0, 1500] | None = None,
        duration: Range[int, 1, 16] = 5,
        resolution: str = "720p",
        aspect_ratio: str | None = None,
        style: str | None = None,
        seed: Range[int, 0, SEED_MAX] | None = None,
        off_peak: bool = False,
        music: discord.Attachment | None = None,
        model: str = DEFAULT_ANIMATE_MODEL,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        picture = attached("image", image)
        check_image(picture)
        inputs = [input_ref("image", picture)]
        audio_url = None
        if music is not None:
            song = attached("music", music)
            check_audio(song)
            inputs.append(input_ref("audio", song))
            audio_url = song.url
        params = without_none(
            images=[picture.url],
            prompt=prompt or "",
            duration=duration,
            resolution=resolution,
            aspect_ratio=aspect_ratio,
            style=style,
            seed=seed,
            off_peak=off_peak or None,
            audio=audio_url,
        )
        await self.start_job(interaction, model, params, inputs)

    @app_commands.command(
        name="reference", description="Put the subjects of your images into a new scene (Vidu Q2)"
    )
    @app_commands.describe(
        prompt="the scene; name subjects with @1 … @7 (e.g. '@1 waves at @2')",
        subject1="image of subject @1",
        subject2="image of subject @2",
        subject3="image of subject @3",
        subject4="image of subject @4",
        subject5="image of subject @5",
        subject6="image of subject @6",
        subject7="image of subject @7",
        duration="length in seconds (1–10)",
        resolution="output resolution (higher costs more)",
        aspect_ratio="shape of the video",
        movement="how much things move",
        bgm="add background music",
        audio="generate sound and speech",
        seed="a number to repeat a result; leave empty for a random one",
        voices="give subjects a voice, e.g. '1=voice_a 2=voice_b'",
    )
    @app_commands.choices(
        resolution=RESOLUTION_CHOICES, aspect_ratio=ASPECT_CHOICES, movement=MOVEMENT_CHOICES
    )
    async def reference(
        self,
        interaction: discord.Interaction[VideoBot],
        prompt: Range[str, 1, 1500],
        subject1: discord.Attachment,
        subject2: discord.Attachment | None = None,
        subject3: discord.Attachment | None = None,
        subject4: discord.Attachment | None = None,
        subject5: discord.Attachment | None = None,
        subject6: discord.Attachment | None = None,
        subject7: discord.Attachment | None = None,
        duration: Range[int, 1, 10] = 5,
        resolution: str = "720p",
        aspect_ratio: str | None = None,
        movement: str | None = None,
        bgm: bool = False,
        audio: bool = False,
        seed: Range[int, 0, SEED_MAX] | None = None,
        voices: Range[str, 0, 500] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        given = [subject1, subject2, subject3, subject4, subject5, subject6, subject7]
        files = {
            number: attached(f"subject{number}", attachment)
            for number, attachment in enumerate(given, start=1)
            if attachment is not None
        }
        for file in files.values():
            check_image(file)
        check_subject_references(prompt, set(files))
        voice_of = parse_voices(voices, set(files))
        subjects = [
            without_none(id=str(number), images=[file.url], voice_id=voice_of.get(number))
            for number, file in files.items()
        ]
        params = without_none(
            prompt=prompt,
            subjects=subjects,
            duration=duration,
            resolution=resolution,
            aspect_ratio=aspect_ratio,
            movement_amplitude=movement,
            bgm=bgm or None,
            audio=audio or None,
            seed=seed,
        )
        inputs = [input_ref("image", file, subject=number) for number, file in files.items()]
        await self.start_job(interaction, REFERENCE_MODELS[0], params, inputs)

    async def start_job(
        self,
        interaction: discord.Interaction[VideoBot],
        model: str,
        params: dict[str, Any],
        inputs: list[InputRef],
        reroll_of: int | None = None,
    ) -> Job:
        """Charge, submit, and put up the public job card. Refusals raise UserFacingError."""
        assert interaction.guild_id is not None and interaction.channel_id is not None
        check_can_post(interaction)
        self.bot.upload_limits[interaction.guild_id] = interaction.filesize_limit
        job = await self.bot.service.submit(
            SubmitRequest(
                guild_id=interaction.guild_id,
                channel_id=interaction.channel_id,
                user_id=interaction.user.id,
                model=model,
                params=params,
                inputs=inputs,
                reroll_of=reroll_of,
            )
        )
        if job.state is JobState.REJECTED:
            raise UserFacingError(
                f"{job.failure_reason or 'The video service refused this request.'} "
                "No credits were spent."
            )
        # From here the job exists and its credits are held: whatever fails below must not
        # tell the member to try again (that would pay for a second video).
        card_link = await self.post_card(interaction, job)
        if self.bot.poller is not None:
            self.bot.poller.wake()
        lines = [f"Job #{job.id} is on its way: {job.price} credits held."]
        try:
            balance = await self.bot.service.balance(interaction.guild_id, interaction.user.id)
            left = "unlimited" if balance.available is None else f"{balance.available} credits"
            lines[0] = f"Job #{job.id} is on its way: {job.price} credits held, {left} left."
        except Exception:
            log.exception("job %s: balance not shown", job.id)
        if job.state is JobState.SUBMITTING and job.failure_reason:
            lines.append(job.failure_reason)
        lines.append(
            f"Follow it on its card: {card_link}"
            if card_link
            else "I could not put up its card here, so I will tell you by direct message."
        )
        try:
            await interaction.followup.send("\n".join(lines), ephemeral=True)
        except discord.HTTPException:
            log.warning("job %s: submitted, but the confirmation did not reach the member", job.id)
        return job

    async def post_card(self, interaction: discord.Interaction[VideoBot], job: Job) -> str | None:
        """Put up the job's public card; None if it could not be posted."""
        channel = interaction.channel
        if not isinstance(channel, discord.abc.Messageable):
            return None
        try:
            card = await channel.send(embed=job_card(job))
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
            log.info("job %s: no card in channel %s (%r)", job.id, job.channel_id, error)
            return None
        attached = await self.bot.service.attach_card(job.id, card.id)
        # The poller may have moved the job while the card was being posted, before it had a
        # card to draw on: draw the state it has now.
        if attached.state is not job.state and self.bot.poller is not None:
            self.bot.poller.announce(attached)
        return card.jump_url

    # --- following videos -----------------------------------------------------------------

    @app_commands.command(name="status", description="How one of your video jobs is doing")
    @app_commands.describe(job="the job number (start typing to pick a recent one)")
    async def status(self, interaction: discord.Interaction[VideoBot], job: int) -> None:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True)
        moderator = is_moderator(interaction)
        found = await self.bot.service.status(
            job, interaction.guild_id, interaction.user.id, moderator
        )
        text = None
        if found.result_url and found.state in CHARGED_STATES:
            text = f"Video: {found.result_url}\n{expiry_text(found)}"
        await interaction.followup.send(text or "", embed=job_card(found), ephemeral=True)

    @status.autocomplete("job")
    async def status_job_autocomplete(
        self, interaction: discord.Interaction[VideoBot], current: str
    ) -> list[Choice[int]]:
        if interaction.guild_id is None:
            return []
        jobs = await self.bot.service.history(interaction.guild_id, interaction.user.id, limit=25)
        choices = []
        for job in jobs:
            label = f"#{job.id} · {job.state.value.lower()} · {job.params.get('prompt') or '(no prompt)'}"
            if current.strip() in label:
                choices.append(Choice(name=label[:100], value=job.id))
        return choices[:25]

    @app_commands.command(name="history", description="Your recent video jobs")
    async def history(self, interaction: discord.Interaction[VideoBot]) -> None:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True)
        jobs = await self.bot.service.history(interaction.guild_id, interaction.user.id, limit=10)
        if not jobs:
            await interaction.followup.send(
                "You have no video jobs here yet. Try `/video animate`.", ephemeral=True
            )
            return
        lines = [history_line(job) for job in jobs]
        embed = discord.Embed(title="Your recent videos", description="\n".join(lines)[:4000])
        await interaction.followup.send(embed=embed, ephemeral=True)

    # --- re-roll --------------------------------------------------------------------------

    async def reroll(self, interaction: discord.Interaction[VideoBot], job_id: int) -> None:
        """Same request, new seed, charged to whoever clicked."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        click = (job_id, interaction.user.id)
        if click in self._rerolling:
            # A double click must not pay for two videos.
            raise UserFacingError(f"Your re-roll of job #{job_id} is already on its way.")
        self._rerolling.add(click)
        try:
            await self._reroll(interaction, job_id)
        finally:
            self._rerolling.discard(click)

    async def _reroll(self, interaction: discord.Interaction[VideoBot], job_id: int) -> None:
        original = await self.bot.service.get_job(job_id)
        if original is None or original.guild_id != interaction.guild_id:
            raise UserFacingError("That job is not known here any more.")
        urls = await self.fresh_input_urls(original)
        params = replace_urls(original.params, urls)
        params["seed"] = random.randint(1, SEED_MAX)
        inputs = [
            InputRef(**{**ref.model_dump(), "url": urls.get(ref.url, ref.url)})
            for ref in original.inputs
        ]
        await self.start_job(interaction, original.model, params, inputs, reroll_of=original.id)

    async def fresh_input_urls(self, job: Job) -> dict[str, str]:
        """Working links for a job's inputs, keyed by the stored ones.

        Discord signs attachment links for about a day; `refresh-urls` re-signs them for as
        long as the file exists. A link that still does not answer means the input is gone.
        """
        stored = [ref.url for ref in job.inputs]
        route = discord.http.Route("POST", "/attachments/refresh-urls")
        try:
            answer = await self.bot.http.request(route, json={"attachment_urls": stored})
            refreshed = {
                item["original"]: item["refreshed"]
                for item in answer.get("refreshed_urls", [])
                if item.get("refreshed")
            }
        except discord.HTTPException as error:
            log.info("job %s: refresh-urls failed (%s); trying stored links", job.id, error.status)
            refreshed = {}
        fresh = {url: refreshed.get(url, url) for url in stored}
        async with aiohttp.ClientSession(timeout=LINK_CHECK_TIMEOUT) as session:
            for url in fresh.values():
                if not await answers(session, url):
                    raise UserFacingError(
                        f"The images of job #{job.id} are no longer stored on Discord, so it "
                        "cannot be re-rolled. Start a new `/video` command with them attached."
                    )
        return fresh


async def answers(session: aiohttp.ClientSession, url: str) -> bool:
    """Whether a link still serves its file (asks for one byte; the body is not read)."""
    try:
        async with session.get(url, headers={"Range": "bytes=0-0"}) as response:
            return response.status < 400
    except (aiohttp.ClientError, TimeoutError):
        return False


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
    }
    missing = [name for name, granted in needed.items() if not granted]
    if missing:
        raise UserFacingError(
            f"I can't post videos in this channel: I am missing {', '.join(missing)}. "
            "Ask a moderator to give me that here, or use another channel.",
            code="bot_permissions",
        )


def replace_urls(value: Any, urls: dict[str, str]) -> Any:
    """A deep copy of an API body with every input link swapped for its fresh one."""
    if isinstance(value, dict):
        return {key: replace_urls(item, urls) for key, item in value.items()}
    if isinstance(value, list):
        return [replace_urls(item, urls) for item in value]
    if isinstance(value, str):
        return urls.get(value, value)
    return value


def history_line(job: Job) -> str:
    when = discord.utils.format_dt(job.created_at, "R")
    head = f"**#{job.id}** · {job.state.value.lower()} · {job.price} credits · {when}"
    if job.result_url and job.state in CHARGED_STATES:
        alive = job.result_expires_at is None or job.result_expires_at > discord.utils.utcnow()
        return f"{head} · [video]({job.result_url})" if alive else f"{head} · link expired"
    if job.failure_reason and job.state not in {JobState.SUCCEEDED, JobState.DELIVERED}:
        return f"{head}\n  {job.failure_reason[:150]}"
    return head


class RerollButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=REROLL_TEMPLATE):
    """The `Re-roll` button under every result; works across restarts (state in custom id)."""

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

    async def callback(self, interaction: discord.Interaction[VideoBot]) -> None:  # type: ignore[override]
        cog = interaction.client.get_cog(Video.__cog_name__)
        if not isinstance(cog, Video):
            return
        if interaction.client.closing:
            await send_ephemeral(interaction, RESTARTING)
            return
        async with interaction.client.handling():
            try:
                await cog.reroll(interaction, self.job_id)
            except Exception as error:
                await report_error(interaction, error)


async def setup(bot: VideoBot) -> None:
    await bot.add_cog(Video(bot))
