"""The fake Discord against a real, unmodified discord.py ``commands.Bot``."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

try:
    from tests.fakediscord import (
        ATTACH_FILES,
        AttachmentSpec,
        FakeDiscord,
        FakeGuild,
        FakeMember,
    )
except ImportError:  # tests/ itself is on sys.path when pytest runs this file rootless
    from fakediscord import (  # type: ignore[no-redef]
        ATTACH_FILES,
        AttachmentSpec,
        FakeDiscord,
        FakeGuild,
        FakeMember,
    )

PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


class RerollView(discord.ui.View):
    """A persistent view: survives restarts because it has no timeout and a fixed custom_id."""

    def __init__(self, clicks: list[discord.Interaction]) -> None:
        super().__init__(timeout=None)
        self.clicks = clicks

    @discord.ui.button(label="Re-roll", custom_id="fake:reroll", style=discord.ButtonStyle.primary)
    async def reroll(
        self, interaction: discord.Interaction, button: discord.ui.Button[RerollView]
    ) -> None:
        self.clicks.append(interaction)
        await interaction.response.send_message("re-rolling", ephemeral=True)


@dataclass
class Seen:
    attachments: list[discord.Attachment] = field(default_factory=list)
    interactions: list[discord.Interaction] = field(default_factory=list)
    clicks: list[discord.Interaction] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


class MiniBot(commands.Bot):
    def __init__(self) -> None:
        super().__init__(command_prefix="!", intents=discord.Intents.default())
        self.seen = Seen()
        video = app_commands.Group(name="video", description="Make videos")

        @video.command(name="animate", description="Animate an image")
        @app_commands.describe(image="The picture", prompt="What happens", duration="Seconds")
        async def animate(
            interaction: discord.Interaction,
            image: discord.Attachment,
            prompt: str = "",
            duration: app_commands.Range[int, 1, 16] = 5,
        ) -> None:
            self.seen.attachments.append(image)
            self.seen.interactions.append(interaction)
            await interaction.response.defer(thinking=True, ephemeral=True)
            await interaction.followup.send(
                f"{image.filename} {image.width}x{image.height} {image.content_type} {duration}s"
            )

        @video.command(name="status", description="Status of a job")
        async def status(interaction: discord.Interaction, job: str) -> None:
            await interaction.response.send_message(f"job {job}", ephemeral=True)

        @status.autocomplete("job")
        async def job_autocomplete(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            return [
                app_commands.Choice(name=f"job {n}", value=n)
                for n in ("a1", "b2")
                if n.startswith(current)
            ]

        self.tree.add_command(video)

        @self.tree.error
        async def on_error(
            interaction: discord.Interaction, error: app_commands.AppCommandError
        ) -> None:
            self.seen.errors.append(error)

    async def setup_hook(self) -> None:
        self.add_view(RerollView(self.seen.clicks))


@dataclass
class World:
    fake: FakeDiscord
    bot: MiniBot
    guild: FakeGuild
    alice: FakeMember
    mod: FakeMember

    @property
    def channel_id(self) -> int:
        return self.guild.default_channel_id


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with FakeDiscord() as fake:
        guild = fake.add_guild("Video Club", premium_tier=2)
        alice = fake.add_member(guild.id, "alice")
        mod = fake.add_member(guild.id, "mod", permissions=discord.Permissions(manage_guild=True))
        bot = MiniBot()
        async with fake.running(bot):
            yield World(fake, bot, guild, alice, mod)


def image(**overrides: Any) -> AttachmentSpec:
    spec = AttachmentSpec("cat.png", "image/png", width=640, height=480, content=PNG_1x1)
    for key, value in overrides.items():
        setattr(spec, key, value)
    return spec


async def test_bot_logs_in_over_compressed_gateway_and_sees_the_guild(world: World) -> None:
    fake, bot = world.fake, world.bot
    assert bot.user is not None and bot.user.id == fake.bot_user.id
    assert bot.application_id == fake.application_id
    conn = fake.connection
    assert conn is not None and conn.compress_mode in ("zlib-stream", "zstd-stream")
    assert conn.session is not None and conn.session.intents == discord.Intents.default().value

    guild = bot.get_guild(world.guild.id)
    assert guild is not None and guild.name == "Video Club"
    assert guild.filesize_limit == 50 * 1024 * 1024
    assert guild.me.guild_permissions.attach_files
    channel = guild.get_channel(world.channel_id)
    assert isinstance(channel, discord.TextChannel)
    assert channel.permissions_for(guild.me).send_messages
    # Without the members intent Discord sends (and discord.py caches) only the bot's member.
    assert guild.get_member(world.mod.id) is None and guild.me.id == fake.bot_user.id
    assert bot.latency < 5  # a heartbeat was acknowledged


async def test_tree_sync_is_recorded(world: World) -> None:
    synced = await world.bot.tree.sync()
    assert [c.name for c in synced] == ["video"]
    assert synced[0].id == int(world.fake.global_commands[0]["id"])
    assert len(world.fake.command_syncs) == 1 and world.fake.command_syncs[0].guild_id is None
    animate = world.fake.global_commands[0]["options"][0]
    assert {o["name"]: o["type"] for o in animate["options"]} == {
        "image": 11,
        "prompt": 3,
        "duration": 4,
    }

    await world.bot.tree.sync(guild=discord.Object(world.guild.id))
    assert world.fake.guild_commands[world.guild.id] == []
    assert [c.name for c in await world.bot.tree.fetch_commands()] == ["video"]


async def test_slash_command_with_attachment_defers_and_follows_up(world: World) -> None:
    fake = world.fake
    await world.bot.tree.sync()
    inter = await fake.invoke_slash(
        world.guild.id,
        world.channel_id,
        world.alice,
        "video",
        subcommand="animate",
        options={"prompt": "a cat dances", "duration": 8},
        attachments={"image": image()},
    )
    callback = await inter.wait_response()
    assert callback.type == 5 and callback.ephemeral
    message = await inter.wait_message()
    assert message.text == "cat.png 640x480 image/png 8s"
    # The first followup after a thinking defer replaces the loading message and stays ephemeral.
    assert message.id == inter.original_id and message.ephemeral and not message.loading
    assert fake.messages(world.channel_id) == []

    attachment = world.bot.seen.attachments[0]
    assert (attachment.width, attachment.height, attachment.size) == (640, 480, len(PNG_1x1))
    assert await attachment.read() == PNG_1x1
    received = world.bot.seen.interactions[0]
    assert received.filesize_limit == 50 * 1024 * 1024
    assert not received.permissions.manage_guild
    assert received.app_permissions.attach_files


async def test_invoke_slash_checks_options_against_the_synced_schema(world: World) -> None:
    await world.bot.tree.sync()
    with pytest.raises(ValueError, match="required options missing"):
        await world.fake.invoke_slash(
            world.guild.id, world.channel_id, world.alice, "video animate"
        )
    with pytest.raises(ValueError, match="must be <= 16"):
        await world.fake.invoke_slash(
            world.guild.id,
            world.channel_id,
            world.alice,
            "video animate",
            options={"image": image(), "duration": 99},
        )


async def test_channel_message_with_file_edit_history_and_nonce(world: World) -> None:
    fake, bot = world.fake, world.bot
    channel = bot.get_partial_messageable(world.channel_id)
    sent = await channel.send(
        "your video",
        file=discord.File(io.BytesIO(b"\x00\x00\x00\x18ftypmp42"), filename="video.mp4"),
        nonce="job-42",
    )
    assert sent.attachments[0].filename == "video.mp4"
    stored = fake.messages(world.channel_id)
    assert len(stored) == 1 and stored[0].files[0].data == b"\x00\x00\x00\x18ftypmp42"
    assert stored[0].files[0].content_type == "video/mp4"
    assert await sent.attachments[0].read() == b"\x00\x00\x00\x18ftypmp42"

    # A retry with the same nonce (e.g. after a crash mid-upload) gets the same message back.
    again = await channel.send("your video", nonce="job-42")
    assert again.id == sent.id and len(fake.messages(world.channel_id)) == 1

    await sent.edit(content="your video (done)")
    assert fake.message(sent.id).content == "your video (done)"  # type: ignore[union-attr]
    assert fake.message(sent.id).files[0].filename == "video.mp4"  # type: ignore[union-attr]
    history = [m async for m in channel.history(limit=10)]
    assert [m.id for m in history] == [sent.id]
    fetched = await channel.fetch_message(sent.id)
    assert fetched.content == "your video (done)"
    upload = fake.find_requests("POST /channels/*/messages")[0]
    assert upload.json["nonce"] == "job-42" and upload.json["enforce_nonce"] is True
    assert upload.files[0].filename == "video.mp4"


async def test_upload_over_the_limit_is_413_code_40005(world: World) -> None:
    fake = world.fake
    small = fake.add_guild("Small", attachment_size_limit=16)
    await fake.flush()  # the bot has processed GUILD_CREATE
    assert world.bot.get_guild(small.id) is not None
    channel = world.bot.get_partial_messageable(small.default_channel_id)
    with pytest.raises(discord.HTTPException) as too_big:
        await channel.send(file=discord.File(io.BytesIO(b"x" * 17), filename="big.mp4"))
    assert (too_big.value.status, too_big.value.code) == (413, 40005)
    assert fake.messages(small.default_channel_id) == []

    fake.fail("POST /channels/*/messages", 413)
    with pytest.raises(discord.HTTPException) as injected:
        await world.bot.get_partial_messageable(world.channel_id).send(
            file=discord.File(io.BytesIO(b"tiny"), filename="v.mp4")
        )
    assert (injected.value.status, injected.value.code) == (413, 40005)


async def test_injected_errors_map_to_discord_py_exceptions(world: World) -> None:
    fake = world.fake
    channel = world.bot.get_partial_messageable(world.channel_id)

    fake.fail(f"POST /channels/{world.channel_id}/messages", 404)
    with pytest.raises(discord.NotFound) as gone:
        await channel.send("hi")
    assert gone.value.code == 10003

    fake.fail("POST /channels/*/messages", 403)
    with pytest.raises(discord.Forbidden) as forbidden:
        await channel.send("hi")
    assert forbidden.value.code == 50013

    fake.fail("POST /channels/*/messages", 503)
    with pytest.raises(discord.DiscordServerError):
        await channel.send("hi")

    fault = fake.fail("POST /channels/*/messages", 429, retry_after=0.01, times=2)
    sent = await channel.send("after rate limit")  # discord.py sleeps retry_after and retries
    assert fault.hits == 2 and fake.message(sent.id) is not None

    # Real permissions, not injected: a channel where the bot may not attach files.
    locked = fake.add_channel(world.guild.id, "no-files", bot_deny=ATTACH_FILES)
    await fake.flush()
    with pytest.raises(discord.Forbidden) as no_files:
        await world.bot.get_partial_messageable(locked.id).send(
            file=discord.File(io.BytesIO(b"v"), filename="v.mp4")
        )
    assert no_files.value.code == 50013

    fake.delete_channel(locked.id)
    with pytest.raises(discord.NotFound):
        await world.bot.get_partial_messageable(locked.id).send("hi")


async def test_dropped_connection_mid_upload_then_nonce_retry(world: World) -> None:
    fake = world.fake
    channel = world.bot.get_partial_messageable(world.channel_id)
    fake.drop_connection("POST /channels/*/messages", accept=True)
    with pytest.raises(aiohttp.ClientError):
        await channel.send(
            "video", file=discord.File(io.BytesIO(b"mp4"), filename="v.mp4"), nonce="job-7"
        )
    assert len(fake.messages(world.channel_id)) == 1  # Discord got it before the socket died

    retried = await channel.send(
        "video", file=discord.File(io.BytesIO(b"mp4"), filename="v.mp4"), nonce="job-7"
    )
    assert [m.id for m in fake.messages(world.channel_id)] == [retried.id]


async def test_a_hold_keeps_the_answer_of_a_post_that_landed_until_released(world: World) -> None:
    fake = world.fake
    channel = world.bot.get_partial_messageable(world.channel_id)
    hold = fake.hold("POST /channels/*/messages", accept=True)
    sending = asyncio.create_task(channel.send("video", nonce="job-8"))
    await fake.wait_until(lambda: bool(hold.held), 5, "the post to be held")
    [stored] = fake.messages(world.channel_id)  # it landed; only its answer waits
    assert stored.content == "video" and not sending.done()

    hold.release()
    sent = await asyncio.wait_for(sending, 5)
    assert sent.id == stored.id
    assert [m.id for m in fake.messages(world.channel_id)] == [stored.id]
    await channel.send("next")  # times=1: the next post is not held
    assert len(fake.messages(world.channel_id)) == 2


async def test_a_hold_before_the_post_lands_performs_it_only_when_released(world: World) -> None:
    fake = world.fake
    channel = world.bot.get_partial_messageable(world.channel_id)
    hold = fake.hold("POST /channels/*/messages", accept=False, when=lambda r: bool(r.files))
    await channel.send("no file")  # not matched: goes through at once
    sending = asyncio.create_task(
        channel.send("video", file=discord.File(io.BytesIO(b"mp4"), filename="v.mp4"))
    )
    await fake.wait_until(lambda: bool(hold.held), 5, "the upload to be held")
    assert [m.content for m in fake.messages(world.channel_id)] == ["no file"]

    hold.release()
    sent = await asyncio.wait_for(sending, 5)
    assert [m.id for m in fake.messages(world.channel_id)][-1] == sent.id and sent.attachments


async def test_a_cancelled_hold_hangs_up_without_performing_the_request(world: World) -> None:
    fake = world.fake
    channel = world.bot.get_partial_messageable(world.channel_id)
    hold = fake.hold("POST /channels/*/messages", accept=False)
    sending = asyncio.create_task(channel.send("lost"))
    await fake.wait_until(lambda: bool(hold.held), 5, "the post to be held")
    hold.cancel()
    with pytest.raises(aiohttp.ClientError):
        await asyncio.wait_for(sending, 5)
    assert fake.messages(world.channel_id) == []
    [request] = hold.held
    assert request.status is None and request.fault is hold


async def test_closing_the_fake_ends_held_requests_at_once() -> None:
    async with FakeDiscord(patch_discord=False) as fake:
        guild = fake.add_guild("Club")
        hold = fake.hold("POST /channels/*/messages")
        async with aiohttp.ClientSession() as session:
            posting = asyncio.create_task(
                session.post(
                    f"{fake.api_url}/channels/{guild.default_channel_id}/messages",
                    json={"content": "hi"},
                    headers={"Authorization": f"Bot {fake.token}"},
                )
            )
            await fake.wait_until(lambda: bool(hold.held), 5, "the post to be held")
            await asyncio.wait_for(fake.close(), 5)  # not the server's 60 s shutdown timeout
            with pytest.raises(aiohttp.ClientError):
                await asyncio.wait_for(posting, 5)


async def test_dm_and_closed_dms(world: World) -> None:
    fake = world.fake
    user = await world.bot.fetch_user(world.alice.id)
    await user.send("your video is ready")
    assert [m.content for m in fake.dms(world.alice)] == ["your video is ready"]

    world.alice.user.accepts_dms = False
    with pytest.raises(discord.Forbidden) as closed:
        await user.send("again")
    assert closed.value.code == 50007


async def test_button_click_reaches_the_persistent_view(world: World) -> None:
    fake = world.fake
    channel = world.bot.get_partial_messageable(world.channel_id)
    card = await channel.send("done", view=RerollView(world.bot.seen.clicks))
    stored = fake.message(card.id)
    assert stored is not None and [b["custom_id"] for b in stored.buttons] == ["fake:reroll"]

    click = await fake.click_button(stored, "fake:reroll", world.mod)
    reply = await click.wait_message()
    assert reply.content == "re-rolling" and reply.ephemeral
    clicked = world.bot.seen.clicks[0]
    assert (
        clicked.user.id == world.mod.id
        and clicked.message is not None
        and clicked.message.id == card.id
    )
    assert clicked.permissions.manage_guild


async def test_autocomplete_returns_choices(world: World) -> None:
    await world.bot.tree.sync()
    typing = await world.fake.invoke_autocomplete(
        world.guild.id, world.channel_id, world.alice, "video status", focused="job", value="a"
    )
    assert await typing.wait_choices() == [{"name": "job a1", "value": "a1"}]


async def test_attachment_links_expire_and_refresh(world: World) -> None:
    fake = world.fake
    await world.bot.tree.sync()
    inter = await fake.invoke_slash(
        world.guild.id, world.channel_id, world.alice, "video animate", options={"image": image()}
    )
    await inter.wait_message()
    attachment = world.bot.seen.attachments[0]

    fake.expire_attachment(attachment.id)
    with pytest.raises(discord.NotFound):
        await attachment.read()
    data = await world.bot.http.request(
        discord.http.Route("POST", "/attachments/refresh-urls"),
        json={"attachment_urls": [attachment.url]},
    )
    refreshed = data["refreshed_urls"][0]["refreshed"]
    assert refreshed != attachment.url
    assert await world.bot.http.get_from_cdn(refreshed) == PNG_1x1

    fake.advance(25 * 3600)  # links live a day
    with pytest.raises(discord.NotFound):
        await world.bot.http.get_from_cdn(refreshed)


async def test_interaction_rules_double_ack_and_late_answer(world: World) -> None:
    fake = world.fake
    await world.bot.tree.sync()
    inter = await fake.invoke_slash(
        world.guild.id, world.channel_id, world.alice, "video status", options={"job": "a1"}
    )
    await inter.wait_message()
    received_payload = inter.payload
    assert received_payload["attachment_size_limit"] == 50 * 1024 * 1024
    # Answering twice is Discord's 40060.
    with pytest.raises(discord.HTTPException) as twice:
        await world.bot.http.request(
            discord.http.Route(
                "POST", "/interactions/{id}/{token}/callback", id=inter.id, token=inter.token
            ),
            json={"type": 4, "data": {"content": "again"}},
        )
    assert twice.value.code == 40060


async def test_gateway_drop_resumes_and_interactions_still_arrive(world: World) -> None:
    fake = world.fake
    await world.bot.tree.sync()
    resumed = asyncio.Event()

    async def on_resumed() -> None:
        resumed.set()

    world.bot.add_listener(on_resumed)
    await fake.close_gateway(4000)
    await asyncio.wait_for(resumed.wait(), 5)
    assert fake.resumes == 1
    inter = await fake.invoke_slash(
        world.guild.id, world.channel_id, world.alice, "video status", options={"job": "b2"}
    )
    assert (await inter.wait_message()).content == "job b2"


async def test_allowed_mentions_are_honoured(world: World) -> None:
    fake = world.fake
    channel = world.bot.get_partial_messageable(world.channel_id)
    quiet = await channel.send(
        f"{world.alice.mention} asked for <@{world.mod.id}> @everyone",
        allowed_mentions=discord.AllowedMentions(
            everyone=False, users=[discord.Object(world.alice.id)]
        ),
    )
    stored = fake.message(quiet.id)
    assert (
        stored is not None
        and stored.pinged_user_ids == [world.alice.id]
        and not stored.pings_everyone
    )
    loud = await channel.send(f"{world.alice.mention} hi")
    assert fake.message(loud.id).pinged_user_ids == [world.alice.id]  # type: ignore[union-attr]
    assert not world.bot.seen.errors


async def test_unsynced_commands_still_dispatch_with_inferred_option_types(world: World) -> None:
    # A restarted bot that skips syncing (hash unchanged) still receives its commands.
    inter = await world.fake.invoke_slash(
        world.guild.id,
        world.channel_id,
        world.alice,
        "video animate",
        options={"image": image(width=128, height=512), "duration": 3},
    )
    assert (await inter.wait_message()).content == "cat.png 128x512 image/png 3s"
    sub = inter.payload["data"]["options"][0]
    assert {o["name"]: o["type"] for o in sub["options"]} == {"image": 11, "duration": 4}
    assert world.fake.command_syncs == []
