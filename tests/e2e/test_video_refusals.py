"""Every refusal before anything is spent: one ephemeral message saying what to change,
no credit held, no job row, no ledger row, nothing sent to the video API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bot.simulator import SimulatorConfig
from tests.e2e.conftest import World, image
from tests.fakediscord import AttachmentSpec
from tests.fakediscord.models import ATTACH_FILES, READ_MESSAGE_HISTORY

MB = 1024 * 1024


@dataclass
class Snapshot:
    jobs: int
    ledger: int
    submissions: int
    public_messages: int


async def snapshot(world: World) -> Snapshot:
    page = await world.core.moderation.ledger(world.guild.id, per_page=1000)
    return Snapshot(
        jobs=len(await world.jobs()),
        ledger=len(page.entries),
        submissions=len(world.sim.submissions),
        public_messages=len(world.public_messages()),
    )


async def refused(world: World, command: str, words: str, **kwargs: Any) -> None:
    before = await snapshot(world)
    balance_before = await world.core.moderation.balance(world.guild.id, world.member.id)
    interaction = await world.slash(command, **kwargs)
    texts = " | ".join(interaction.texts)
    assert words in texts, texts
    assert interaction.ephemeral
    assert all(message.ephemeral for message in interaction.messages)
    assert await snapshot(world) == before
    after = await world.core.moderation.balance(world.guild.id, world.member.id)
    assert after == balance_before


ANIMATE_BAD_FILES = [
    pytest.param(
        {"image": AttachmentSpec("cat.png", "application/pdf", size=1000)},
        "is application/pdf",
        id="pdf named .png",
    ),
    pytest.param({"image": image(size=51 * MB)}, "at most 50 MB", id="image over 50 MB"),
    pytest.param({"image": image(width=100, height=400)}, "at least 128×128", id="image too small"),
    pytest.param({"image": image(width=2100, height=500)}, "between 1:4 and 4:1", id="too thin"),
    pytest.param(
        {"image": image(), "music": image("song.mp3")},
        "MP3, WAV, M4A or FLAC",
        id="music is an image",
    ),
    pytest.param(
        {"image": image(), "music": AttachmentSpec("song.mp3", "audio/mpeg", size=21 * MB)},
        "at most 20 MB",
        id="music over 20 MB",
    ),
]


@pytest.mark.parametrize(("attachments", "words"), ANIMATE_BAD_FILES)
async def test_bad_attachments_are_refused_without_spending(
    world: World, attachments: dict[str, AttachmentSpec], words: str
) -> None:
    await refused(world, "video animate", words, attachments=attachments)


async def test_prompt_naming_a_missing_subject(world: World) -> None:
    await refused(
        world,
        "video reference",
        "`subject2` is not attached",
        options={"prompt": "@1 hugs @2"},
        attachments={"subject1": image()},
    )


async def test_bad_voices_text(world: World) -> None:
    await refused(
        world,
        "video reference",
        "Write pairs like",
        options={"prompt": "@1 sings", "voices": "soprano please"},
        attachments={"subject1": image()},
    )


Setup = Callable[[World], Awaitable[None]]


async def channel_elsewhere(world: World) -> None:
    await world.core.moderation.update_guild_settings(
        world.guild.id, world.moderator.id, allowed_channels=[world.other_channel.id]
    )


async def model_disabled(world: World) -> None:
    await world.core.moderation.update_guild_settings(
        world.guild.id, world.moderator.id, enabled_models=["vidu-q3-turbo-i2v"]
    )


async def member_blocked(world: World) -> None:
    await world.core.moderation.block(world.guild.id, world.member.id, world.moderator.id)


async def few_credits(world: World) -> None:
    await world.core.moderation.set_allowance(
        world.guild.id, world.member.id, 10, world.moderator.id
    )


async def guild_cap_reached(world: World) -> None:
    await world.core.moderation.update_guild_settings(
        world.guild.id, world.moderator.id, daily_cap=10
    )


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        pytest.param(channel_elsewhere, "channel", id="channel not allowed"),
        pytest.param(model_disabled, "turned off", id="model disabled"),
        pytest.param(member_blocked, "blocked", id="blocked member"),
        pytest.param(few_credits, "10 credits left", id="not enough credits"),
        pytest.param(guild_cap_reached, "today", id="guild daily cap"),
    ],
)
async def test_policy_refusals_spend_nothing(world: World, setup: Setup, words: str) -> None:
    await setup(world)
    await refused(world, "video animate", words, attachments={"image": image()})


async def test_not_enough_credits_says_the_price(world: World) -> None:
    await few_credits(world)
    interaction = await world.slash("video animate", attachments={"image": image()})
    text = " ".join(interaction.texts)
    # Q3 Pro, 5 s at 720p: 6 credits a second.
    assert "30 credits" in text and "10 credits left" in text, text


@pytest.mark.parametrize("settings_overrides", [{"operator_daily_cap": 20}])
async def test_operator_cap_spends_nothing(world: World) -> None:
    await refused(world, "video animate", "daily video budget", attachments={"image": image()})


@pytest.mark.parametrize("sim_config", [SimulatorConfig(task_seconds=30)])
async def test_too_many_running_jobs(world: World) -> None:
    await world.core.moderation.update_guild_settings(
        world.guild.id, world.moderator.id, max_concurrent=1
    )
    first = await world.slash("video animate", attachments={"image": image()})
    assert "Job #1" in " ".join(first.texts)
    await refused(world, "video animate", "in progress", attachments={"image": image()})


async def test_api_rejection_releases_the_hold(world: World) -> None:
    """The API refuses at submit (content policy): the member is told, nothing is charged."""
    interaction = await world.slash(
        "video animate", options={"prompt": "something illegal"}, attachments={"image": image()}
    )
    text = " ".join(interaction.texts)
    assert "No credits were spent" in text, text
    balance = await world.core.moderation.balance(world.guild.id, world.member.id)
    assert balance.held == 0 and balance.used == 0
    [job] = await world.jobs()
    assert job.state.value == "REJECTED"
    assert not [m for m in world.public_messages() if "Video job" in m.text]


@pytest.mark.parametrize(
    ("denied", "named"),
    [(ATTACH_FILES, "Attach Files"), (READ_MESSAGE_HISTORY, "Read Message History")],
)
async def test_channel_where_the_bot_cannot_post_safely(
    world: World, denied: int, named: str
) -> None:
    # Without Read Message History, a post cut off mid-upload could not be found again after
    # Discord's nonce window, so the video might be posted twice: refuse before spending.
    locked = world.fake.add_channel(world.guild.id, "locked", bot_deny=denied)
    before = await snapshot(world)
    interaction = await world.slash("video animate", channel=locked, attachments={"image": image()})
    assert f"missing {named}" in " ".join(interaction.texts)
    assert await snapshot(world) == before
    assert world.fake.messages(locked.id) == []
