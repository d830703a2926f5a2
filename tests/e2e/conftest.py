"""The whole bot, end to end, on loopback.

A `World` is a fake Discord (REST + gateway) with one server, two channels, a member and a
moderator; the video-API simulator; a real SQLite file; and the real `VideoBot` built by the
same composition root as `python -m bot`, connected through an unmodified discord.py client.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.app import Resources, build_bot, open_resources
from bot.core import Core
from bot.discord.bot import VideoBot
from bot.settings import Settings
from bot.simulator import Simulator, SimulatorConfig
from storage.models import Job, LedgerEntry
from tests.fakediscord import (
    MANAGE_GUILD,
    AttachmentSpec,
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    FakeInteraction,
    FakeMember,
    StoredMessage,
)


def png_bytes(width: int, height: int) -> bytes:
    """A real (tiny, grey) PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def image(
    name: str = "cat.png", width: int = 640, height: int = 480, **changes: Any
) -> AttachmentSpec:
    values: dict[str, Any] = {
        "filename": name,
        "content_type": "image/png",
        "width": width,
        "height": height,
        "content": png_bytes(min(width, 256), min(height, 256)),
    }
    values.update(changes)
    return AttachmentSpec(**values)


def world_settings(tmp_path: Path, sim: Simulator, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "_env_file": None,
        "discord_token": "fake-bot-token",
        "novita_base_url": sim.base_url,
        "novita_api_key": sim.api_key,
        "database_path": tmp_path / "bot.sqlite3",
        "health_file": tmp_path / "health",
        "download_dir": tmp_path / "downloads",
        "poll_min_seconds": 0.05,
        "poll_max_seconds": 0.5,
        "off_peak_poll_seconds": 0.5,
        "card_edit_interval_seconds": 0,
        "delivery_retry_seconds": 0.2,
        "api_submits_per_minute": 6000,
        "api_reads_per_minute": 6000,
        "default_allowance": 100,
        "default_period": "week",
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class World:
    fake: FakeDiscord
    sim: Simulator
    app: Resources
    bot: VideoBot
    guild: FakeGuild
    channel: FakeChannel
    other_channel: FakeChannel
    member: FakeMember
    moderator: FakeMember
    tmp_path: Path

    @property
    def settings(self) -> Settings:
        return self.app.settings

    @property
    def core(self) -> Core:
        return self.app.core

    async def slash(
        self,
        command: str,
        *,
        user: FakeMember | None = None,
        channel: FakeChannel | None = None,
        options: dict[str, Any] | None = None,
        attachments: dict[str, AttachmentSpec] | None = None,
    ) -> FakeInteraction:
        """Run a slash command and wait until the bot has answered it (beyond a defer)."""
        interaction = await self.fake.invoke_slash(
            self.guild.id,
            (channel or self.channel).id,
            user or self.member,
            command,
            options=options,
            attachments=attachments,
        )
        # The first message with content (not the "thinking…" placeholder of a defer), then
        # a quiet moment for anything that follows it.
        await interaction.wait_message(timeout=10)
        await interaction.wait_idle(timeout=10)
        return interaction

    async def jobs(self) -> list[Job]:
        return await self.core.lifecycle.history(self.guild.id, self.member.id, limit=100)

    async def wait_job(
        self, job_id: int, predicate: Callable[[Job], bool], timeout: float = 10.0
    ) -> Job:
        async with asyncio.timeout(timeout):
            while True:
                job = await self.core.lifecycle.get_job(job_id)
                assert job is not None
                if predicate(job):
                    return job
                await asyncio.sleep(0.02)

    async def wait_message(
        self,
        predicate: Callable[[StoredMessage], bool],
        channel: FakeChannel | None = None,
        timeout: float = 10.0,
    ) -> StoredMessage:
        return await self.fake.wait_for_message(
            (channel or self.channel).id, predicate, timeout=timeout
        )

    def public_messages(self, channel: FakeChannel | None = None) -> list[StoredMessage]:
        return self.fake.messages((channel or self.channel).id)

    async def ledger_rows(self) -> list[LedgerEntry]:
        """Every ledger row of the test guild, oldest first."""
        async with self.app.db.read() as store:
            return await store.ledger_entries(self.guild.id)

    async def moderator_runs(self, command: str, **options: Any) -> str:
        """A moderator runs a command; returns its one private, silent answer."""
        interaction = await self.slash(command, user=self.moderator, options=options)
        assert interaction.ephemeral
        return private_reply(interaction).text


def private_reply(interaction: FakeInteraction) -> StoredMessage:
    """The bot's one visible answer, checked to be private and silent."""
    message = interaction.last_message
    assert message is not None, interaction.responses
    assert message.ephemeral, message.text
    assert message.pinged_user_ids == [] and message.pinged_role_ids == []
    assert not message.pings_everyone
    return message


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(task_seconds=0.3)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def world(
    tmp_path: Path, sim_config: SimulatorConfig, settings_overrides: dict[str, Any]
) -> AsyncIterator[World]:
    async with FakeDiscord() as fake, Simulator(sim_config) as sim:
        guild = fake.add_guild("Film Club", channels=("general", "off-topic"))
        member = fake.add_member(guild.id, "alice")
        moderator = fake.add_member(guild.id, "mod", permissions=MANAGE_GUILD)
        settings = world_settings(tmp_path, sim, discord_token=fake.token, **settings_overrides)
        async with open_resources(settings) as app:
            bot = build_bot(app)
            async with fake.running(bot):
                yield World(
                    fake=fake,
                    sim=sim,
                    app=app,
                    bot=bot,
                    guild=guild,
                    channel=guild.channel_named("general"),
                    other_channel=guild.channel_named("off-topic"),
                    member=member,
                    moderator=moderator,
                    tmp_path=tmp_path,
                )
