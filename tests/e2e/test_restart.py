"""Stopping and starting the bot: nothing lost, nothing posted twice, nothing re-synced.

One fake Discord and one video-API simulator outlive several bots, each built by the same
composition root as `python -m bot` over the SAME database file, as a restarted process
would be. The last test runs the real `python -m bot` in a subprocess and stops it with
SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.app import build_bot, open_resources
from bot.discord.bot import COMMAND_HASH_KEY
from bot.simulator import Simulator, SimulatorConfig
from storage import SQLiteDatabase
from storage.models import Job, JobState
from tests.e2e.conftest import World, image
from tests.e2e.conftest import world_settings as settings_for
from tests.e2e.helpers import process_env, video_from_a_bot_process
from tests.fakediscord import MANAGE_GUILD, FakeDiscord, FakeGuild, FakeMember, StoredMessage
from tests.fakediscord.models import RecordedRequest

UPLOAD = "POST /channels/*/messages"


@pytest.fixture(autouse=True)
def no_unexpected_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every branch here is an outcome the poller and delivery handle, never a crash."""
    caplog.set_level(logging.WARNING)
    yield
    broken = [
        r.getMessage()
        for r in caplog.get_records("call")
        if r.name.startswith(("bot.core", "bot.discord")) and r.levelno >= logging.ERROR
    ]
    assert broken == []


@dataclass
class Stage:
    """What outlives a bot: Discord, the video service, the server and its members."""

    fake: FakeDiscord
    sim: Simulator
    guild: FakeGuild
    member: FakeMember
    moderator: FakeMember
    tmp_path: Path


@pytest.fixture
async def stage(tmp_path: Path) -> AsyncIterator[Stage]:
    # Tasks end only when a test calls `sim.finish_task`: a restart can come before a result.
    async with FakeDiscord() as fake, Simulator(SimulatorConfig(task_seconds=600)) as sim:
        guild = fake.add_guild("Film Club", channels=("general", "off-topic"))
        member = fake.add_member(guild.id, "alice")
        moderator = fake.add_member(guild.id, "mod", permissions=MANAGE_GUILD)
        yield Stage(fake, sim, guild, member, moderator, tmp_path)


@contextlib.asynccontextmanager
async def running(stage: Stage, **overrides: Any) -> AsyncIterator[World]:
    """One life of the bot: open the core (same database file every time), run, close."""
    settings = settings_for(stage.tmp_path, stage.sim, discord_token=stage.fake.token, **overrides)
    async with open_resources(settings) as app:
        bot = build_bot(app)
        async with stage.fake.running(bot):
            yield World(
                fake=stage.fake,
                sim=stage.sim,
                app=app,
                bot=bot,
                guild=stage.guild,
                channel=stage.guild.channel_named("general"),
                other_channel=stage.guild.channel_named("off-topic"),
                member=stage.member,
                moderator=stage.moderator,
                tmp_path=stage.tmp_path,
            )
    assert bot.is_closed()


def has_files(request: RecordedRequest) -> bool:
    return bool(request.files)


async def animate(world: World, prompt: str = "a cat waves") -> Job:
    interaction = await world.slash(
        "video animate", options={"prompt": prompt}, attachments={"image": image()}
    )
    jobs = await world.jobs()
    assert jobs, interaction.texts
    return jobs[0]


def video_posts(stage: Stage, job: Job) -> list[StoredMessage]:
    bot_id = stage.fake.bot_user.id
    return [
        m
        for m in stage.fake.all_messages()
        if m.author_id == bot_id and not m.ephemeral and f"job #{job.id}" in m.content
    ]


async def test_a_job_resumes_after_a_restart_and_is_delivered_once(stage: Stage) -> None:
    async with running(stage) as first:
        job = await animate(first)
        assert job.state is JobState.QUEUED and job.task_id is not None
        # The first bot's poller has been reading the task.
        await stage.fake.wait_until(lambda: bool(stage.sim.result_reads), 5, "a result read")
    # The first bot is gone: its poller reads nothing more.
    reads = len(stage.sim.result_reads)
    await asyncio.sleep(0.3)
    assert len(stage.sim.result_reads) == reads

    stage.sim.finish_task(job.task_id)
    async with running(stage) as second:
        done = await second.wait_job(job.id, lambda j: j.state is JobState.DELIVERED)
        await stage.fake.flush()
        [video] = video_posts(stage, job)
        assert video.files and video.reply_to == job.card_message_id
        assert done.delivered_message_id == video.id
        # The card the first bot posted ends on the second bot's edit.
        assert job.card_message_id is not None
        card = stage.fake.message(job.card_message_id)
        assert card is not None
        await stage.fake.wait_until(lambda: "Done" in card.text, 5, "the card to say Done")
        balance = await second.core.moderation.balance(stage.guild.id, stage.member.id)
        assert balance.held == 0 and balance.used == job.price
    assert len(stage.sim.submissions) == 1
    assert len([r for r in stage.fake.find_requests(UPLOAD) if r.files]) == 1


async def test_a_submission_cut_off_becomes_lost_and_is_released(stage: Stage) -> None:
    # The service takes the task but the answer never comes: the bot cannot know its id.
    stage.sim.hang_next_submission()
    async with running(stage, submit_timeout_seconds=0.5) as first:
        interaction = await first.slash(
            "video animate", options={"prompt": "a cat"}, attachments={"image": image()}
        )
        await interaction.wait_for(lambda i: any("held" in t for t in i.texts), timeout=5)
        [job] = await first.jobs()
        assert job.state is JobState.SUBMITTING and job.task_id is None
        assert job.failure_reason and "did not confirm" in " ".join(interaction.texts)
        held = await first.core.moderation.balance(stage.guild.id, stage.member.id)
        assert held.held == job.price

    async with running(stage) as second:
        lost = await second.core.lifecycle.get_job(job.id)
        assert lost is not None and lost.state is JobState.LOST
        assert lost.failure_reason and "returned" in lost.failure_reason
        balance = await second.core.moderation.balance(stage.guild.id, stage.member.id)
        assert balance.held == 0 and balance.used == 0 and balance.available == 100
        page = await second.core.moderation.ledger(stage.guild.id, stage.member.id)
        assert sorted(e.kind for e in page.entries if e.job_id == job.id) == ["hold", "release"]
        # The card the first bot left at "Submitting" now says what happened.
        assert job.card_message_id is not None
        card = stage.fake.message(job.card_message_id)
        assert card is not None
        await stage.fake.wait_until(lambda: "Lost" in card.text, 5, "the card to say Lost")
        assert card.text.count("credits were returned") == 1  # said once, not twice
        assert card.pinged_user_ids == []
    # Never sent twice: the service may have made it, and would bill it again.
    assert len(stage.sim.submissions) == 1


async def test_commands_are_synced_on_the_first_start_only(stage: Stage) -> None:
    async with running(stage) as first:
        assert len(stage.fake.command_syncs) == 1
        names = {command["name"] for command in stage.fake.global_commands}
        assert {"video", "quota"} <= names
        assert await first.app.db.get_meta(COMMAND_HASH_KEY)
    async with running(stage):
        pass
    assert len(stage.fake.command_syncs) == 1


async def test_crash_during_upload_then_a_late_restart_posts_once(stage: Stage) -> None:
    # The upload lands but its answer is lost; the bot stops before it tries again.
    stage.fake.drop_connection(UPLOAD, when=has_files)
    async with running(stage, delivery_retry_seconds=60) as first:
        job = await animate(first)
        assert job.task_id is not None
        stage.sim.finish_task(job.task_id)
        await first.wait_job(job.id, lambda j: j.state is JobState.SUCCEEDED and j.attempts == 1)
    [landed] = video_posts(stage, job)
    assert landed.files

    # Long enough that Discord's nonce no longer guards: only the history check can.
    stage.fake.advance(stage.fake.nonce_window + 60)
    async with running(stage) as second:
        done = await second.wait_job(job.id, lambda j: j.state is JobState.DELIVERED)
    assert done.delivered_message_id == landed.id
    assert video_posts(stage, job) == [landed]
    assert len([r for r in stage.fake.find_requests(UPLOAD) if r.files]) == 1


async def test_python_m_bot_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    async with FakeDiscord() as fake:
        guild = fake.add_guild("Film Club")
        member = fake.add_member(guild.id, "alice")
        database = tmp_path / "bot.sqlite3"
        env = process_env(
            fake,
            tmp_path,
            LOG_LEVEL="DEBUG",  # the most a log can say: still no token
        )
        stderr_path = tmp_path / "stderr.log"
        with stderr_path.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                cwd=tmp_path,  # no stray .env is read
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
            )
            try:
                video = await video_from_a_bot_process(fake, guild, member)
                assert video.pinged_user_ids == [member.id]

                process.send_signal(signal.SIGTERM)
                code = await asyncio.wait_for(process.wait(), timeout=5)
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
        log = stderr_path.read_text()
        assert code == 0, log[-3000:]
        assert "SIGTERM received" in log
        assert (tmp_path / "health").read_text().strip().isdigit()  # the poller's heartbeat
        assert fake.token not in log

        # The job was settled in the database the process left behind.
        db = await SQLiteDatabase.open(database)
        try:
            async with db.read() as store:
                job = await store.get_job(1)
        finally:
            await db.close()
        assert job is not None and job.state is JobState.DELIVERED
        assert job.delivered_message_id == video.id
