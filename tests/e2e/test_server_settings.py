"""`/video-settings`, end to end: real discord.py against the fake Discord.

Each change must reach the job service's guild settings, write one ledger row naming the
moderator, answer ephemerally without pinging; a member without Manage Server who invokes a
subcommand anyway changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.core.catalog import CATALOG
from storage.models import LedgerEntry
from tests.e2e.conftest import World, image, private_reply
from tests.fakediscord import MANAGE_GUILD

NOT_A_MODERATOR = "Only moderators (Manage Server) can use this command."
PRO, TURBO, REFERENCE = "vidu-q3-pro-i2v", "vidu-q3-turbo-i2v", "vidu-q2-reference2video"


async def settings_row(world: World, before: int) -> LedgerEntry:
    """The one ledger row a settings change writes: guild-wide, by the moderator."""
    rows = await world.ledger_rows()
    assert len(rows) == before + 1, rows[before:]
    row = rows[-1]
    assert (row.kind, row.user_id, row.actor) == ("default", None, str(world.moderator.id))
    return row


async def test_group_is_guild_only_and_hidden(world: World) -> None:
    command = next(c for c in world.fake.global_commands if c["name"] == "video-settings")
    assert command.get("contexts") == [0]
    assert str(command["default_member_permissions"]) == str(MANAGE_GUILD)
    assert {option["name"] for option in command["options"]} == {
        "channels",
        "concurrency",
        "models",
        "daily-cap",
        "show",
    }
    models = next(o for o in command["options"] if o["name"] == "models")
    model_option = next(o for o in models["options"] if o["name"] == "model")
    assert [choice["value"] for choice in model_option["choices"]] == list(CATALOG)


async def test_channels_add_remove_and_all(world: World) -> None:
    moderation = world.core.moderation
    text = await world.moderator_runs(
        "video-settings channels", action="add", channel=world.other_channel
    )
    assert f"only in {world.other_channel.mention}" in text
    assert (await moderation.guild_settings(world.guild.id)).allowed_channels == [
        world.other_channel.id
    ]
    row = await settings_row(world, 0)
    assert str(world.other_channel.id) in row.reason

    await world.moderator_runs("video-settings channels", action="add", channel=world.channel)
    allowed = (await moderation.guild_settings(world.guild.id)).allowed_channels
    assert sorted(allowed) == sorted([world.channel.id, world.other_channel.id])
    await settings_row(world, 1)

    text = await world.moderator_runs(
        "video-settings channels", action="remove", channel=world.channel
    )
    assert "removed" in text
    assert (await moderation.guild_settings(world.guild.id)).allowed_channels == [
        world.other_channel.id
    ]
    await settings_row(world, 2)

    text = await world.moderator_runs("video-settings channels", action="all")
    assert "every channel" in text
    assert (await moderation.guild_settings(world.guild.id)).allowed_channels == []
    await settings_row(world, 3)


async def test_allowed_channels_reach_the_video_command(world: World) -> None:
    await world.moderator_runs("video-settings channels", action="add", channel=world.other_channel)

    refused = await world.slash(
        "video animate", options={"prompt": "x"}, attachments={"image": image()}
    )

    assert world.other_channel.mention in private_reply(refused).text
    assert await world.jobs() == []


async def test_channels_mistakes_change_nothing(world: World) -> None:
    text = await world.moderator_runs("video-settings channels", action="add")
    assert "Pick the `channel` to add" in text
    text = await world.moderator_runs(
        "video-settings channels", action="remove", channel=world.channel
    )
    assert "Every channel is allowed" in text
    await world.moderator_runs("video-settings channels", action="add", channel=world.channel)
    text = await world.moderator_runs(
        "video-settings channels", action="add", channel=world.channel
    )
    assert "already allowed" in text
    text = await world.moderator_runs(
        "video-settings channels", action="remove", channel=world.other_channel
    )
    assert "not in the list" in text
    # Removing the last one would silently mean "every channel": refused.
    text = await world.moderator_runs(
        "video-settings channels", action="remove", channel=world.channel
    )
    assert "only allowed channel" in text

    assert len(await world.ledger_rows()) == 1
    assert (await world.core.moderation.guild_settings(world.guild.id)).allowed_channels == [
        world.channel.id
    ]


async def test_concurrency(world: World) -> None:
    text = await world.moderator_runs("video-settings concurrency", jobs=4)

    assert "4 job(s) at once" in text
    assert (await world.core.moderation.guild_settings(world.guild.id)).max_concurrent == 4
    row = await settings_row(world, 0)
    assert "running jobs per member: 4" in row.reason


async def test_models_disable_and_enable(world: World) -> None:
    moderation = world.core.moderation
    text = await world.moderator_runs("video-settings models", model=TURBO, enabled=False)
    assert f"`{TURBO}` is now disabled" in text
    assert (await moderation.guild_settings(world.guild.id)).enabled_models == [PRO, REFERENCE]
    await settings_row(world, 0)

    text = await world.moderator_runs("video-settings models", model=TURBO, enabled=False)
    assert "already disabled" in text
    assert len(await world.ledger_rows()) == 1

    text = await world.moderator_runs("video-settings models", model=TURBO, enabled=True)
    assert f"`{TURBO}` is now enabled" in text
    # Every model on again is stored as "all", so models added later are on too.
    assert (await moderation.guild_settings(world.guild.id)).enabled_models is None
    await settings_row(world, 1)


async def test_disabling_the_last_model_is_refused(world: World) -> None:
    await world.moderator_runs("video-settings models", model=TURBO, enabled=False)
    await world.moderator_runs("video-settings models", model=REFERENCE, enabled=False)

    text = await world.moderator_runs("video-settings models", model=PRO, enabled=False)

    assert "at least one model" in text
    assert (await world.core.moderation.guild_settings(world.guild.id)).enabled_models == [PRO]
    assert len(await world.ledger_rows()) == 2


async def test_daily_cap_set_and_removed(world: World) -> None:
    moderation = world.core.moderation
    text = await world.moderator_runs("video-settings daily-cap", credits=500)
    assert "at most 500 credits per UTC day" in text
    assert (await moderation.guild_settings(world.guild.id)).daily_cap == 500
    await settings_row(world, 0)

    text = await world.moderator_runs("video-settings daily-cap")
    assert "no daily cap" in text
    assert (await moderation.guild_settings(world.guild.id)).daily_cap is None
    await settings_row(world, 1)


async def test_show(world: World) -> None:
    moderation = world.core.moderation
    await moderation.update_guild_settings(
        world.guild.id,
        world.moderator.id,
        allowed_channels=[world.other_channel.id],
        max_concurrent=3,
        enabled_models=[PRO],
        daily_cap=700,
    )
    rows = len(await world.ledger_rows())

    text = await world.moderator_runs("video-settings show")

    assert f"Channels: {world.other_channel.mention}" in text
    assert "Running jobs per member: 3" in text
    assert f"Models: `{PRO}`" in text and TURBO not in text
    assert "700 credits per UTC day" in text
    assert "Default allowance: 100 credits per week" in text
    assert len(await world.ledger_rows()) == rows


Options = Callable[[World], dict[str, Any]]
MODERATOR_COMMANDS: list[tuple[str, Options]] = [
    ("channels", lambda w: {"action": "add", "channel": w.other_channel}),
    ("channels", lambda w: {"action": "all"}),
    ("concurrency", lambda w: {"jobs": 50}),
    ("models", lambda w: {"model": PRO, "enabled": False}),
    ("daily-cap", lambda w: {"credits": 0}),
    ("daily-cap", lambda w: {}),
    ("show", lambda w: {}),
]


@pytest.mark.parametrize(
    ("command", "options"),
    MODERATOR_COMMANDS,
    ids=[f"{name}-{n}" for n, (name, _) in enumerate(MODERATOR_COMMANDS)],
)
async def test_a_member_without_manage_server_is_refused(
    world: World, command: str, options: Options
) -> None:
    moderation = world.core.moderation
    # A cap to remove and a channel list to clear, so every refused change would show.
    await moderation.update_guild_settings(
        world.guild.id, world.moderator.id, allowed_channels=[world.channel.id], daily_cap=900
    )
    rows_before = await world.ledger_rows()
    settings_before = await moderation.guild_settings(world.guild.id)

    interaction = await world.slash(
        f"video-settings {command}", user=world.member, options=options(world)
    )

    assert interaction.ephemeral
    assert private_reply(interaction).text == NOT_A_MODERATOR
    assert await world.ledger_rows() == rows_before
    assert await moderation.guild_settings(world.guild.id) == settings_before
