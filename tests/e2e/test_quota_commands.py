"""`/quota` and `/quota-admin`, end to end: real discord.py against the fake Discord.

Each moderator command must change what the job service says, write one ledger row naming
the moderator, answer ephemerally without pinging anyone, and do nothing at all for a
member without Manage Server who invokes it anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.simulator import SimulatorConfig
from storage.models import JobState, LedgerEntry
from tests.e2e.conftest import World, image, private_reply
from tests.fakediscord import MANAGE_GUILD, FakeInteraction, StoredMessage

NOT_A_MODERATOR = "Only moderators (Manage Server) can use this command."


# --- helpers -------------------------------------------------------------------------------------


async def one_new_row(world: World, before: int) -> LedgerEntry:
    rows = await world.ledger_rows()
    assert len(rows) == before + 1, rows[before:]
    row = rows[-1]
    assert row.actor == str(world.moderator.id)
    return row


def button(message: StoredMessage, direction: str) -> dict[str, Any]:
    prefix = f"qlog:{direction}:"
    return next(b for b in message.buttons if b["custom_id"].startswith(prefix))


# --- registration --------------------------------------------------------------------------------


async def test_commands_are_guild_only_and_moderator_ones_hidden(world: World) -> None:
    commands = {command["name"]: command for command in world.fake.global_commands}
    assert {"quota", "quota-admin"} <= set(commands)
    for name in ("quota", "quota-admin"):
        assert commands[name].get("contexts") == [0], commands[name]
    assert commands["quota"].get("default_member_permissions") is None
    assert str(commands["quota-admin"]["default_member_permissions"]) == str(MANAGE_GUILD)
    subcommands = {option["name"]: option for option in commands["quota-admin"]["options"]}
    assert set(subcommands) == {
        "set",
        "grant",
        "reset",
        "block",
        "unblock",
        "default",
        "role",
        "role-remove",
        "show",
        "log",
    }
    options = {
        name: [option["name"] for option in sub.get("options", [])]
        for name, sub in subcommands.items()
    }
    assert options == {
        "set": ["member", "credits", "unlimited"],
        "grant": ["member", "credits", "reason"],
        "reset": ["member"],
        "block": ["member"],
        "unblock": ["member"],
        "default": ["credits", "period"],
        "role": ["role", "credits"],
        "role-remove": ["role"],
        "show": ["member"],
        "log": ["member", "page"],
    }


# --- /quota --------------------------------------------------------------------------------------


async def test_quota_shows_the_members_numbers(world: World) -> None:
    moderation = world.core.moderation
    await moderation.grant_bonus(world.guild.id, world.member.id, 7, "welcome", world.moderator.id)

    interaction = await world.slash("quota")

    assert interaction.ephemeral
    text = private_reply(interaction).text
    balance = await moderation.balance(world.guild.id, world.member.id)
    typical = await moderation.typical_price(world.guild.id)
    assert balance.allowance == 100 and balance.bonus == 7
    assert "Left this period: **100** of 100 (per week)" in text
    assert "Held by running jobs: 0" in text
    assert "Bonus: 7" in text
    assert "Available now: **107**" in text
    assert balance.resets_at is not None
    stamp = int(balance.resets_at.timestamp())
    assert f"<t:{stamp}:R>" in text and f"<t:{stamp}:f>" in text
    assert f"costs about **{typical}** credits" in text
    assert "5 s 720p Vidu Q3 Pro video: 30" in text


@pytest.mark.parametrize("sim_config", [SimulatorConfig(task_seconds=120)])
async def test_quota_counts_credits_held_by_a_running_job(world: World) -> None:
    started = await world.slash(
        "video animate", options={"prompt": "a slow pan"}, attachments={"image": image()}
    )
    assert started.ephemeral
    [job] = await world.jobs()
    assert job.state in {JobState.QUEUED, JobState.PROCESSING}

    text = private_reply(await world.slash("quota")).text

    balance = await world.core.moderation.balance(world.guild.id, world.member.id)
    assert balance.held == job.price > 0
    assert f"Held by running jobs: {balance.held}" in text
    assert f"Left this period: **{100 - job.price}** of 100" in text
    assert f"Available now: **{balance.available}**" in text


async def test_quota_for_a_blocked_and_an_unlimited_member(world: World) -> None:
    moderation = world.core.moderation
    await moderation.block(world.guild.id, world.member.id, world.moderator.id)
    text = private_reply(await world.slash("quota")).text
    assert "**Blocked**" in text

    await moderation.unblock(world.guild.id, world.member.id, world.moderator.id)
    await moderation.set_allowance(world.guild.id, world.member.id, None, world.moderator.id)
    text = private_reply(await world.slash("quota")).text
    assert "Blocked" not in text
    assert "Left this period: **unlimited**" in text


# --- /quota-admin: every command works and writes its row ---------------------------------------


async def test_set_credits(world: World) -> None:
    text = await world.moderator_runs("quota-admin set", member=world.member, credits=40)

    assert world.member.mention in text and "40 credits per period" in text
    balance = await world.core.moderation.balance(world.guild.id, world.member.id)
    assert balance.allowance == 40
    row = await one_new_row(world, 0)
    assert (row.kind, row.user_id) == ("set", world.member.id)


async def test_set_unlimited_then_back_to_the_server_default(world: World) -> None:
    moderation = world.core.moderation
    text = await world.moderator_runs("quota-admin set", member=world.member, unlimited=True)
    assert "unlimited" in text
    assert (await moderation.balance(world.guild.id, world.member.id)).allowance is None
    row = await one_new_row(world, 0)
    assert row.kind == "set" and "unlimited" in row.reason

    text = await world.moderator_runs("quota-admin set", member=world.member)
    assert "server default" in text
    assert (await moderation.balance(world.guild.id, world.member.id)).allowance == 100
    row = await one_new_row(world, 1)
    assert row.kind == "set" and "default" in row.reason


async def test_set_with_credits_and_unlimited_is_refused(world: World) -> None:
    text = await world.moderator_runs(
        "quota-admin set", member=world.member, credits=5, unlimited=True
    )

    assert "not both" in text
    assert await world.ledger_rows() == []
    assert (await world.core.moderation.balance(world.guild.id, world.member.id)).allowance == 100


async def test_grant_and_take_back_bonus(world: World) -> None:
    moderation = world.core.moderation
    text = await world.moderator_runs(
        "quota-admin grant", member=world.member, credits=25, reason="won the contest"
    )
    assert "Granted 25 bonus credits" in text and "Available now: 125" in text
    assert (await moderation.balance(world.guild.id, world.member.id)).bonus == 25
    row = await one_new_row(world, 0)
    assert (row.kind, row.amount, row.reason) == ("grant", 25, "won the contest")

    text = await world.moderator_runs(
        "quota-admin grant", member=world.member, credits=-10, reason="oops"
    )
    assert "Took unused bonus credits back" in text
    assert (await moderation.balance(world.guild.id, world.member.id)).bonus == 15
    row = await one_new_row(world, 1)
    assert (row.kind, row.amount) == ("grant", -10)


async def test_grant_of_zero_is_refused(world: World) -> None:
    text = await world.moderator_runs(
        "quota-admin grant", member=world.member, credits=0, reason="nothing"
    )

    assert "other than 0" in text
    assert await world.ledger_rows() == []


async def test_reset_gives_back_this_periods_use(world: World) -> None:
    await world.slash("video animate", options={"prompt": "a wave"}, attachments={"image": image()})
    [job] = await world.jobs()
    await world.wait_job(job.id, lambda j: j.state is JobState.DELIVERED, timeout=15)
    moderation = world.core.moderation
    assert (await moderation.balance(world.guild.id, world.member.id)).used == job.price
    before = len(await world.ledger_rows())

    text = await world.moderator_runs("quota-admin reset", member=world.member)

    assert "Reset this period's usage" in text and "Available now: 100" in text
    balance = await moderation.balance(world.guild.id, world.member.id)
    assert balance.used == 0 and balance.available == 100
    row = await one_new_row(world, before)
    assert (row.kind, row.user_id, row.amount) == ("reset", world.member.id, job.price)


async def test_block_and_unblock(world: World) -> None:
    moderation = world.core.moderation
    text = await world.moderator_runs("quota-admin block", member=world.member)
    assert "Blocked" in text
    assert (await moderation.balance(world.guild.id, world.member.id)).blocked
    row = await one_new_row(world, 0)
    assert (row.kind, row.user_id) == ("block", world.member.id)

    text = await world.moderator_runs("quota-admin unblock", member=world.member)
    assert "Unblocked" in text
    assert not (await moderation.balance(world.guild.id, world.member.id)).blocked
    row = await one_new_row(world, 1)
    assert (row.kind, row.user_id) == ("unblock", world.member.id)


async def test_default_credits_and_period(world: World) -> None:
    text = await world.moderator_runs("quota-admin default", credits=50, period="day")

    assert "50 credits per day" in text
    settings = await world.core.moderation.guild_settings(world.guild.id)
    assert (settings.allowance, settings.period) == (50, "day")
    row = await one_new_row(world, 0)
    assert (row.kind, row.user_id, row.amount) == ("default", None, 50)
    quota = private_reply(await world.slash("quota")).text
    assert "Left this period: **50** of 50 (per day)" in quota


async def test_show_member(world: World) -> None:
    moderation = world.core.moderation
    await moderation.grant_bonus(world.guild.id, world.member.id, 9, "helpful", world.moderator.id)
    await moderation.set_allowance(world.guild.id, world.member.id, 60, world.moderator.id)

    text = await world.moderator_runs("quota-admin show", member=world.member)

    assert f"Credits of {world.member.mention}" in text
    assert "Left this period: **60** of 60" in text and "Bonus: 9" in text
    assert "**grant** +9" in text and "helpful" in text
    assert f"by {world.moderator.mention}" in text
    # Reading is not a change: no ledger row.
    assert len(await world.ledger_rows()) == 2


async def test_a_user_who_left_the_server_can_still_be_managed(world: World) -> None:
    departed = world.fake.add_user("gone")  # a user, not a member of the guild any more
    await world.core.moderation.block(world.guild.id, departed.id, world.moderator.id)

    text = await world.moderator_runs("quota-admin unblock", member=departed)

    assert "Unblocked" in text
    assert not (await world.core.moderation.balance(world.guild.id, departed.id)).blocked
    text = await world.moderator_runs("quota-admin show", member=departed)
    assert "**unblock**" in text and "**block**" in text


# --- /quota-admin log: paging --------------------------------------------------------------------


async def _grants(world: World, count: int, member_id: int | None = None) -> None:
    for number in range(count):
        await world.core.moderation.grant_bonus(
            world.guild.id, member_id or world.member.id, 1, f"gift {number}", world.moderator.id
        )


async def _click(
    world: World, message: StoredMessage, direction: str, user: Any
) -> FakeInteraction:
    click = await world.fake.click_button(message, button(message, direction)["custom_id"], user)
    await click.wait_idle()
    return click


def _current(world: World, message: StoredMessage) -> StoredMessage:
    latest = world.fake.message(message.id)
    assert latest is not None
    return latest


async def test_log_pages_with_buttons(world: World) -> None:
    await _grants(world, 25)
    interaction = await world.slash("quota-admin log", user=world.moderator)
    page = private_reply(interaction)
    assert "Credit ledger of this server** — page 1 of 3" in page.text
    assert "gift 24" in page.text and "gift 15" in page.text and "gift 14" not in page.text
    assert button(page, "p")["disabled"] and not button(page, "n")["disabled"]

    await _click(world, page, "n", world.moderator)
    page = _current(world, page)
    assert "page 2 of 3" in page.text and "gift 14" in page.text and "gift 5" in page.text

    await _click(world, page, "n", world.moderator)
    page = _current(world, page)
    assert "page 3 of 3" in page.text and "gift 0" in page.text
    assert button(page, "n")["disabled"] and not button(page, "p")["disabled"]

    await _click(world, page, "p", world.moderator)
    page = _current(world, page)
    assert "page 2 of 3" in page.text
    assert page.pinged_user_ids == [] and page.ephemeral


async def test_log_buttons_work_only_for_the_moderator_who_asked(world: World) -> None:
    await _grants(world, 15)
    other_moderator = world.fake.add_member(world.guild.id, "other-mod", permissions=MANAGE_GUILD)
    page = private_reply(await world.slash("quota-admin log", user=world.moderator))
    assert "page 1 of 2" in page.text

    for intruder in (other_moderator, world.member):
        click = await _click(world, page, "n", intruder)
        assert click.ephemeral
        assert "Only the moderator who asked" in click.texts[-1]
        assert "page 1 of 2" in _current(world, page).text


async def test_log_page_option_and_member_filter(world: World) -> None:
    other = world.fake.add_member(world.guild.id, "bob")
    await _grants(world, 12)
    await _grants(world, 3, member_id=other.id)

    page = private_reply(
        await world.slash("quota-admin log", user=world.moderator, options={"page": 2})
    ).text
    assert "page 2 of 2" in page and "gift 0" in page

    page = private_reply(
        await world.slash("quota-admin log", user=world.moderator, options={"member": other})
    ).text
    assert f"Credit ledger of {other.mention}** — page 1 of 1" in page
    assert page.count("**grant**") == 3

    # A page past the end shows the last one.
    page = private_reply(
        await world.slash("quota-admin log", user=world.moderator, options={"page": 99})
    ).text
    assert "page 2 of 2" in page


async def test_log_of_an_empty_ledger(world: World) -> None:
    page = private_reply(await world.slash("quota-admin log", user=world.moderator))
    assert "page 1 of 1" in page.text and "No ledger rows yet." in page.text
    assert button(page, "p")["disabled"] and button(page, "n")["disabled"]


# --- non-moderators are refused in code ----------------------------------------------------------

Options = Callable[[World], dict[str, Any]]
MODERATOR_COMMANDS: list[tuple[str, Options]] = [
    ("set", lambda w: {"member": w.member, "credits": 1_000}),
    ("set", lambda w: {"member": w.member, "unlimited": True}),
    ("grant", lambda w: {"member": w.member, "credits": 500, "reason": "me"}),
    ("reset", lambda w: {"member": w.member}),
    ("block", lambda w: {"member": w.moderator}),
    ("unblock", lambda w: {"member": w.member}),
    ("default", lambda w: {"credits": 10_000, "period": "none"}),
    ("show", lambda w: {"member": w.moderator}),
    ("log", lambda w: {}),
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
    await moderation.grant_bonus(world.guild.id, world.moderator.id, 3, "seed", world.moderator.id)
    rows_before = await world.ledger_rows()
    balance_before = await moderation.balance(world.guild.id, world.member.id)
    settings_before = await moderation.guild_settings(world.guild.id)

    # Visible to them anyway (a server can change who sees it): the check in code holds.
    interaction = await world.slash(
        f"quota-admin {command}", user=world.member, options=options(world)
    )

    assert interaction.ephemeral
    assert private_reply(interaction).text == NOT_A_MODERATOR
    assert await world.ledger_rows() == rows_before
    assert await moderation.balance(world.guild.id, world.member.id) == balance_before
    assert await moderation.guild_settings(world.guild.id) == settings_before
