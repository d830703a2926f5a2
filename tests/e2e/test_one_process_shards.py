"""The bot on a Discord that wants two shards: without shard settings one process serves every
shard (as a one-process bot always did); with them, only its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.app import build_bot, open_resources
from bot.discord.bot import VideoBot
from bot.simulator import Simulator, SimulatorConfig
from tests.backends import PgSchema, postgres_url
from tests.e2e.conftest import world_settings
from tests.fakediscord import FakeDiscord


@pytest.fixture(autouse=True)
def no_identify_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    """discord.py waits 5 s before each IDENTIFY after a process's first (Discord's limit);
    the fake has no such limit."""

    async def at_once(self: VideoBot, shard_id: int | None, *, initial: bool = False) -> None:
        return None

    monkeypatch.setattr(VideoBot, "before_identify_hook", at_once)


async def quota_answered(fake: FakeDiscord, guild_id: int, channel_id: int, user: Any) -> bool:
    interaction = await fake.invoke_slash(guild_id, channel_id, user, "quota", options={})
    if not interaction.delivered:
        return False
    await interaction.wait_message(timeout=10)
    return True


async def test_without_shard_settings_one_process_serves_every_shard(tmp_path: Path) -> None:
    async with (
        FakeDiscord(shard_count=2) as fake,
        Simulator(SimulatorConfig(task_seconds=0.3)) as sim,
    ):
        guilds = [fake.add_guild(f"Shard {k}", shard_id=k) for k in range(2)]
        members = [fake.add_member(g.id, f"member{k}") for k, g in enumerate(guilds)]
        settings = world_settings(tmp_path, sim, discord_token=fake.token)
        assert (settings.shard_count, settings.shard_ids) == (None, None)
        async with open_resources(settings) as app:
            bot = build_bot(app)
            async with fake.running(bot):
                # discord.py asked Discord how many shards, and runs them all here.
                assert len(fake.find_requests("GET /gateway/bot")) == 1
                assert bot.shard_count == 2 and sorted(bot.shards) == [0, 1]
                assert sorted(fake.connections) == [0, 1]
                for guild, member in zip(guilds, members, strict=True):
                    assert await quota_answered(fake, guild.id, guild.default_channel_id, member)


async def test_a_process_with_shard_ids_serves_only_those(tmp_path: Path) -> None:
    async with (
        PgSchema.create(await postgres_url()) as schema,
        FakeDiscord(shard_count=2) as fake,
        Simulator(SimulatorConfig(task_seconds=0.3)) as sim,
    ):
        guilds = [fake.add_guild(f"Shard {k}", shard_id=k) for k in range(2)]
        members = [fake.add_member(g.id, f"member{k}") for k, g in enumerate(guilds)]
        settings = world_settings(
            tmp_path,
            sim,
            discord_token=fake.token,
            database_url=schema.url,
            shard_count=2,
            shard_ids="1",
        )
        async with open_resources(settings) as app:
            bot = build_bot(app)
            async with fake.running(bot):
                assert sorted(bot.shards) == [1] and sorted(fake.connections) == [1]
                assert [g.id for g in bot.guilds] == [guilds[1].id]
                assert await quota_answered(
                    fake, guilds[1].id, guilds[1].default_channel_id, members[1]
                )
                assert not await quota_answered(
                    fake, guilds[0].id, guilds[0].default_channel_id, members[0]
                )
                assert [i.payload["guild_id"] for i in fake.undelivered_interactions] == [
                    str(guilds[0].id)
                ]
