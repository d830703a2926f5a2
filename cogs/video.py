"""`/video`: make a video (animate, reference) and follow it (status, history).

The Re-roll button under each video is `bot.discord.buttons.RerollButton`, registered here."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.app_commands import Choice, Range
from discord.ext import commands

from bot.api.models import ASPECT_RATIOS, MOVEMENTS, RESOLUTIONS, SEED_MAX, STYLES
from bot.core.catalog import models_of_kind
from bot.core.inputs import check_audio, check_image, check_subject_references, parse_voices
from bot.core.quota import utcnow
from bot.core.submitting import SubmitRequest
from bot.discord.attachments import attached, input_ref
from bot.discord.buttons import RerollButton
from bot.discord.cards import expiry_text, history_line, job_card, prompt_of
from bot.discord.checks import is_moderator, role_ids_of
from bot.discord.starting import start_job
from storage.models import CHARGED_STATES, InputRef

if TYPE_CHECKING:
    from bot.discord.bot import VideoBot

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


def without_none(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


@app_commands.guild_only()
class Video(commands.GroupCog, group_name="video", group_description="Make videos with Vidu"):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot
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
    ) -> None:
        """Charge, submit, and put up the public job card. Refusals go to the tree."""
        assert interaction.guild_id is not None and interaction.channel_id is not None
        request = SubmitRequest(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            user_id=interaction.user.id,
            model=model,
            params=params,
            inputs=inputs,
            role_ids=role_ids_of(interaction.user),
        )
        await start_job(interaction, lambda: self.bot.core.submitting.submit(request))

    # --- following videos -----------------------------------------------------------------

    @app_commands.command(name="status", description="How one of your video jobs is doing")
    @app_commands.describe(job="the job number (start typing to pick a recent one)")
    async def status(self, interaction: discord.Interaction[VideoBot], job: int) -> None:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True)
        moderator = is_moderator(interaction)
        found = await self.bot.core.lifecycle.status(
            job, interaction.guild_id, interaction.user.id, moderator
        )
        [found] = await self.bot.videos.live_links([found], utcnow(), reads=1)
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
        lifecycle = self.bot.core.lifecycle
        jobs = await lifecycle.history(interaction.guild_id, interaction.user.id, limit=25)
        choices = []
        for job in jobs:
            label = f"#{job.id} · {job.state.value.lower()} · {prompt_of(job) or '(no prompt)'}"
            if current.strip() in label:
                choices.append(Choice(name=label[:100], value=job.id))
        return choices[:25]

    @app_commands.command(name="history", description="Your recent video jobs")
    async def history(self, interaction: discord.Interaction[VideoBot]) -> None:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True)
        jobs = await self.bot.core.lifecycle.history(
            interaction.guild_id, interaction.user.id, limit=10
        )
        if not jobs:
            await interaction.followup.send(
                "You have no video jobs here yet. Try `/video animate`.", ephemeral=True
            )
            return
        jobs = await self.bot.videos.live_links(jobs, utcnow())
        lines = [history_line(job) for job in jobs]
        embed = discord.Embed(title="Your recent videos", description="\n".join(lines)[:4000])
        await interaction.followup.send(embed=embed, ephemeral=True)


async def setup(bot: VideoBot) -> None:
    await bot.add_cog(Video(bot))
