"""The fake Discord with a sharded bot: unmodified ``commands.AutoShardedBot`` clients, each
holding some shards, receive only the events of their guilds."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import discord
import pytest
from discord.ext import commands

try:
    from tests.fakediscord import FakeDiscord, FakeGuild, FakeMember
except ImportError:  # tests/ itself is on sys.path when pytest runs this file rootless
    from fakediscord import FakeDiscord, FakeGuild, FakeMember  # type: ignore[no-redef]


class ShardBot(commands.AutoShardedBot):
    """Answers ``/where`` with its label; remembers what reached it."""

    def __init__(self, label: str, **sharding: Any) -> None:
        super().__init__(command_prefix="!", intents=discord.Intents.default(), **sharding)
        self.label = label
        self.interactions: list[discord.Interaction] = []
        self.seen_messages: list[discord.Message] = []

        @self.tree.command(name="where", description="Which process answers")
        async def where(interaction: discord.Interaction) -> None:
            self.interactions.append(interaction)
            await interaction.response.send_message(f"{self.label} here")

    async def on_message(self, message: discord.Message) -> None:
        self.seen_messages.append(message)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py sleeps 5 s before every IDENTIFY but the first; the fake needs no pause."""


class PlainBot(commands.Bot):
    def __init__(self, label: str) -> None:
        super().__init__(command_prefix="!", intents=discord.Intents.default())
        self.label = label
        self.interactions: list[discord.Interaction] = []

        @self.tree.command(name="where", description="Which process answers")
        async def where(interaction: discord.Interaction) -> None:
            self.interactions.append(interaction)
            await interaction.response.send_message(f"{self.label} here")


@dataclass
class Sharded:
    fake: FakeDiscord
    guilds: list[FakeGuild]  # guilds[k] is on shard k
    members: list[FakeMember]  # members[k] is in guilds[k]
    bots: list[ShardBot]  # bots[k] holds shard k only


@pytest.fixture
async def sharded() -> AsyncIterator[Sharded]:
    async with FakeDiscord(shard_count=2) as fake:
        guilds = [fake.add_guild(f"Shard {k}", shard_id=k) for k in range(2)]
        members = [fake.add_member(g.id, f"member{k}") for k, g in enumerate(guilds)]
        bots = [ShardBot(f"bot{k}", shard_count=2, shard_ids=[k]) for k in range(2)]
        async with fake.running(bots[0]), fake.running(bots[1]):
            await bots[0].tree.sync()
            yield Sharded(fake, guilds, members, bots)


def sent_on(fake: FakeDiscord, shard_id: int, event: str) -> list[dict[str, Any]]:
    """The data of every ``event`` dispatched on the session of ``shard_id``'s connection."""
    session = fake.connections[shard_id].session
    assert session is not None
    return [p["d"] for p in session.sent if p["t"] == event]


async def test_each_shard_is_ready_with_only_its_own_guild(sharded: Sharded) -> None:
    fake, guilds, bots = sharded.fake, sharded.guilds, sharded.bots
    assert [fake.shard_of(g.id) for g in guilds] == [0, 1]
    assert sorted(fake.connections) == [0, 1] and fake.connection is fake.connections[0]
    for k in range(2):
        assert [g.id for g in bots[k].guilds] == [guilds[k].id]
        assert bots[k].guilds[0].shard_id == k
        (ready,) = sent_on(fake, k, "READY")
        assert ready["shard"] == [k, 2]
        assert [g["id"] for g in ready["guilds"]] == [str(guilds[k].id)]
        assert [g["id"] for g in sent_on(fake, k, "GUILD_CREATE")] == [str(guilds[k].id)]
    assert fake.identifies == 2


async def test_interactions_reach_only_the_process_holding_the_shard(sharded: Sharded) -> None:
    fake, guilds, members, bots = sharded.fake, sharded.guilds, sharded.members, sharded.bots
    for k in (1, 0, 1):
        inter = await fake.invoke_slash(
            guilds[k].id, guilds[k].default_channel_id, members[k], "where"
        )
        assert (await inter.wait_message()).text == f"bot{k} here"
        assert inter.delivered
        assert str(inter.id) in [i["id"] for i in sent_on(fake, k, "INTERACTION_CREATE")]
        assert str(inter.id) not in [i["id"] for i in sent_on(fake, 1 - k, "INTERACTION_CREATE")]
    assert [i.guild_id for i in bots[0].interactions] == [guilds[0].id]
    assert [i.guild_id for i in bots[1].interactions] == [guilds[1].id, guilds[1].id]
    assert fake.undelivered_interactions == []


async def test_rest_works_from_both_and_message_events_stay_on_their_shard(
    sharded: Sharded,
) -> None:
    fake, guilds, members, bots = sharded.fake, sharded.guilds, sharded.members, sharded.bots
    for k in range(2):
        channel = bots[k].get_channel(guilds[k].default_channel_id)
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send(f"hello from bot{k}")
        assert [m.id for m in fake.messages(guilds[k].default_channel_id)] == [sent.id]
    fake.add_message(guilds[1].default_channel_id, members[1], "a member writes")
    await fake.flush()
    for k in range(2):
        assert {m.guild.id for m in bots[k].seen_messages if m.guild} == {guilds[k].id}
    assert len(bots[1].seen_messages) == 2 and len(bots[0].seen_messages) == 1


async def test_a_guild_added_later_joins_only_its_shard(sharded: Sharded) -> None:
    fake, bots = sharded.fake, sharded.bots
    late = fake.add_guild("Late", shard_id=1)
    fake.add_channel(late.id, "announcements")
    await fake.flush()
    assert bots[1].get_guild(late.id) is not None and bots[0].get_guild(late.id) is None
    assert late.channel_named("announcements").id in [
        c.id
        for c in bots[1].get_guild(late.id).channels  # type: ignore[union-attr]
    ]


async def test_a_shard_without_a_connection_never_gets_its_interaction() -> None:
    async with FakeDiscord(shard_count=2) as fake:
        online = fake.add_guild("Online", shard_id=0)
        offline = fake.add_guild("Offline", shard_id=1)
        alice = fake.add_member(online.id, "alice")
        bob = fake.add_member(offline.id, "bob")
        bot = ShardBot("bot0", shard_count=2, shard_ids=[0])
        async with fake.running(bot):
            lost = await fake.invoke_slash(offline.id, offline.default_channel_id, bob, "where")
            assert not lost.delivered and "shard 1" in (lost.undelivered_reason or "")
            assert fake.undelivered_interactions == [lost]
            with pytest.raises(TimeoutError, match="never delivered"):
                await lost.wait_response(timeout=2)
            assert lost.callback is None and lost.responses == []

            # The fake carries on, and shard 0 still works.
            ok = await fake.invoke_slash(online.id, online.default_channel_id, alice, "where")
            assert (await ok.wait_message()).text == "bot0 here"
            assert [i.id for i in bot.interactions] == [ok.id]
            assert sent_on(fake, 0, "INTERACTION_CREATE") == [ok.payload]

        # A bot that closed cleanly ended its session: nothing is buffered for it either.
        gone = await fake.invoke_slash(online.id, online.default_channel_id, alice, "where")
        assert not gone.delivered and fake.undelivered_interactions == [lost, gone]


async def test_an_interaction_during_a_dropped_connection_waits_for_the_resume(
    sharded: Sharded,
) -> None:
    fake, guilds, members = sharded.fake, sharded.guilds, sharded.members
    await fake.close_gateway(4000, shard_id=1)
    assert 1 not in fake.connections and 0 in fake.connections
    inter = await fake.invoke_slash(guilds[1].id, guilds[1].default_channel_id, members[1], "where")
    assert inter.delivered
    assert (await inter.wait_message()).text == "bot1 here"
    assert fake.resumes == 1 and fake.identifies == 2


async def test_the_newest_connection_of_a_shard_gets_the_events() -> None:
    async with FakeDiscord() as fake:
        guild = fake.add_guild("Club")
        alice = fake.add_member(guild.id, "alice")
        first, second = PlainBot("first"), PlainBot("second")
        async with fake.running(first):
            async with fake.running(second):
                inter = await fake.invoke_slash(guild.id, guild.default_channel_id, alice, "where")
                assert (await inter.wait_message()).text == "second here"
            inter = await fake.invoke_slash(guild.id, guild.default_channel_id, alice, "where")
            assert (await inter.wait_message()).text == "first here"
        assert [len(first.interactions), len(second.interactions)] == [1, 1]


async def test_an_auto_sharded_bot_asks_gateway_bot_and_runs_every_shard() -> None:
    async with FakeDiscord(shard_count=2) as fake:
        guilds = [fake.add_guild(f"Shard {k}", shard_id=k) for k in range(2)]
        members = [fake.add_member(g.id, f"member{k}") for k, g in enumerate(guilds)]
        bot = ShardBot("all")  # no shard_count: discord.py asks GET /gateway/bot
        async with fake.running(bot):
            (asked,) = fake.find_requests("GET /gateway/bot")
            assert asked.response["shards"] == 2 and asked.response["url"] == fake.gateway_url
            assert bot.shard_count == 2 and sorted(bot.shards) == [0, 1]
            assert sorted(g.id for g in bot.guilds) == sorted(g.id for g in guilds)
            assert sorted(fake.connections) == [0, 1]
            for k in range(2):
                inter = await fake.invoke_slash(
                    guilds[k].id, guilds[k].default_channel_id, members[k], "where"
                )
                assert (await inter.wait_message()).text == "all here"


# A bot process holding shard 1, the way ``python -m bot`` finds a non-default Discord: the REST
# base from its settings, the gateway from GET /gateway/bot (discord.py would use Discord's
# public gateway when given a shard_count). It answers one /where, then closes.
CHILD_BOT = """
import sys, discord, yarl
from discord.ext import commands
from discord.gateway import DiscordWebSocket

base, token = sys.argv[1:3]
discord.http.Route.BASE = base + "/api/v10"

class Child(commands.AutoShardedBot):
    async def setup_hook(self):
        _shards, url, _limits = await self.http.get_bot_gateway()
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url.rstrip("/") + "/")

bot = Child(command_prefix="!", intents=discord.Intents.default(), shard_count=2, shard_ids=[1])

@bot.tree.command(name="where", description="Which process answers")
async def where(interaction):
    await interaction.response.send_message("child process here")
    await bot.close()

bot.run(token, log_handler=None)
"""


async def test_a_bot_in_another_process_holds_its_shard() -> None:
    async with FakeDiscord(shard_count=2) as fake:
        guilds = [fake.add_guild(f"Shard {k}", shard_id=k) for k in range(2)]
        members = [fake.add_member(g.id, f"member{k}") for k, g in enumerate(guilds)]
        here = ShardBot("this process", shard_count=2, shard_ids=[0])
        async with fake.running(here):
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-c", CHILD_BOT, fake.base_url, fake.token
            )
            try:
                await fake.wait_ready(timeout=30, shard_id=1)
                assert sorted(fake.connections) == [0, 1]
                for k, answer in ((1, "child process here"), (0, "this process here")):
                    inter = await fake.invoke_slash(
                        guilds[k].id, guilds[k].default_channel_id, members[k], "where"
                    )
                    assert (await inter.wait_message()).text == answer
                assert await asyncio.wait_for(child.wait(), timeout=10) == 0
            finally:
                if child.returncode is None:
                    child.kill()
                    await child.wait()
            # The child said goodbye: shard 1 is offline now, shard 0 is not.
            assert sorted(fake.connections) == [0]
            lost = await fake.invoke_slash(
                guilds[1].id, guilds[1].default_channel_id, members[1], "where"
            )
            assert not lost.delivered


@pytest.mark.parametrize(
    ("sharding", "code"),
    [
        ({"shard_count": 2, "shard_ids": [2]}, 4010),  # shard id out of range
        ({"shard_count": 3, "shard_ids": [0]}, 4010),  # not the fake's shard count
        ({"shard_count": 1, "shard_ids": [0]}, 4011),  # too few shards: sharding required
        (None, 4011),  # a plain Bot sends no shard: shard 0 of 1
    ],
)
async def test_identify_with_a_wrong_shard_is_closed(
    sharding: dict[str, Any] | None, code: int
) -> None:
    async with FakeDiscord(shard_count=2) as fake:
        fake.add_guild("Club", shard_id=1)
        bot: PlainBot | ShardBot = (
            PlainBot("plain") if sharding is None else ShardBot("s", **sharding)
        )
        with pytest.raises(discord.ConnectionClosed) as closed:
            async with fake.running(bot):
                pass
        assert closed.value.code == code
        assert [c.close_code for c in fake.gateway_connections] == [code]
        assert fake.identifies == 0 and fake.connections == {}


async def test_add_guild_picks_ids_on_the_requested_shard() -> None:
    fake = FakeDiscord(shard_count=4, patch_discord=False)
    before = fake.snowflake()
    ids = [fake.add_guild(f"g{k}", shard_id=k).id for k in (3, 0, 2, 1, 1, 3)]
    assert [(gid >> 22) % 4 for gid in ids] == [3, 0, 2, 1, 1, 3]
    assert ids == sorted(set(ids)) and ids[0] > before
    assert fake.snowflake() > ids[-1]
    with pytest.raises(ValueError, match="range"):
        fake.add_guild("nowhere", shard_id=4)
    with pytest.raises(ValueError, match="belongs to shard"):
        fake.add_guild("mismatch", id=ids[0], shard_id=0)
