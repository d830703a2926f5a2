"""What the end-to-end tests of jobs share: running a job, and reading its card and posts."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from bot.simulator import SimulatorConfig
from storage.models import Job, JobState
from tests.e2e.conftest import World, image
from tests.fakediscord import FakeDiscord, FakeGuild, FakeMember, StoredMessage
from tests.fakediscord.models import RecordedRequest

UPLOAD = "POST /channels/*/messages"
HISTORY = "GET /channels/*/messages"


REPO = Path(__file__).resolve().parents[2]


def process_env(fake: FakeDiscord, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a `python -m bot` process against `fake` and the built-in
    simulator, with everything in `tmp_path` and nothing inherited but PATH: quick tasks,
    quick reads, budgets that never hold a test up."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO),
        "NOVITA_SIMULATE": "1",
        "SIMULATE_SECONDS": "0.3",
        "DISCORD_TOKEN": fake.token,
        "DISCORD_API_BASE_URL": fake.base_url,
        "DATABASE_PATH": str(tmp_path / "bot.sqlite3"),
        "HEALTH_FILE": str(tmp_path / "health"),
        "POLL_MIN_SECONDS": "0.05",
        "POLL_MAX_SECONDS": "0.5",
        "API_SUBMITS_PER_MINUTE": "6000",
        "API_READS_PER_MINUTE": "6000",
        **extra,
    }


def slow() -> SimulatorConfig:
    """A task that only ends when the test calls `sim.finish_task`."""
    return SimulatorConfig(task_seconds=600)


def has_files(request: RecordedRequest) -> bool:
    return bool(request.files)


async def animate(world: World, prompt: str = "a cat waves", **options: Any) -> Job:
    """Run `/video animate` as the member; return the job it made (QUEUED, card posted)."""
    interaction = await world.slash(
        "video animate", options={"prompt": prompt, **options}, attachments={"image": image()}
    )
    jobs = await world.jobs()
    assert jobs, interaction.texts
    job = jobs[0]
    assert job.card_message_id is not None, interaction.texts
    assert job.task_id is not None
    return job


def card_of(world: World, job: Job) -> StoredMessage:
    assert job.card_message_id is not None
    card = world.fake.message(job.card_message_id)
    assert card is not None
    return card


def card_versions(card: StoredMessage) -> list[dict[str, Any]]:
    """Every embed the card has shown, oldest first (the fake keeps each edit)."""
    versions = [version["embeds"][0] for version in card.history if version.get("embeds")]
    return [*versions, card.embeds[0]]


def embed_text(embed: dict[str, Any]) -> str:
    fields = "\n".join(f"{f['name']}: {f['value']}" for f in embed.get("fields", []))
    return f"{embed.get('title', '')}\n{embed.get('description', '')}\n{fields}"


def video_posts(fake: FakeDiscord, job: Job) -> list[StoredMessage]:
    """The bot's video posts for `job` (upload or link), in every channel and DM."""
    marker = re.compile(rf"\bjob #{job.id}(?![0-9])", re.IGNORECASE)  # not "job #12"
    bot_id = fake.bot_user.id
    return [
        m
        for m in fake.all_messages()
        if m.author_id == bot_id
        and not m.deleted
        and not m.ephemeral
        and marker.search(m.content)
        and (m.files or "download it" in m.content or "is ready" in m.content)
    ]


def posts_of(world: World, job: Job) -> list[StoredMessage]:
    return video_posts(world.fake, job)


def upload_requests(world: World) -> list[RecordedRequest]:
    return [r for r in world.fake.find_requests(UPLOAD) if r.files]


async def finished(world: World, job: Job, *states: JobState, timeout: float = 10.0) -> Job:
    wanted = states or (JobState.DELIVERED,)
    done = await world.wait_job(job.id, lambda j: j.state in wanted, timeout=timeout)
    await world.fake.flush()
    return done


async def card_shows(world: World, job: Job, text: str, timeout: float = 5.0) -> StoredMessage:
    card = card_of(world, job)
    await world.fake.wait_until(
        lambda: text in embed_text(card.embeds[0]), timeout, f"the card to show {text!r}"
    )
    return card


async def video_from_a_bot_process(
    fake: FakeDiscord, guild: FakeGuild, member: FakeMember
) -> StoredMessage:
    """Once a `python -m bot` process has connected and synced its commands: one
    `/video animate` by `member`, its answer, and the video it posts."""
    await fake.wait_until(
        lambda: fake.connection is not None and bool(fake.command_syncs),
        timeout=30,
        what="the bot to connect and sync its commands",
    )
    interaction = await fake.invoke_slash(
        guild.id,
        guild.default_channel_id,
        member,
        "video animate",
        options={"prompt": "a cat waves"},
        attachments={"image": image()},
    )
    await interaction.wait_message(timeout=10)
    return await fake.wait_for_message(
        guild.default_channel_id, lambda m: bool(m.files), timeout=15
    )
