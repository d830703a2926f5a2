"""Role allowances end to end: moderators give a role its own credits per period; members
holding it get them (the largest role counts, their own setting wins, blocked stays blocked);
a deleted role stops counting; every change is in the ledger."""

from __future__ import annotations

from tests.e2e.conftest import World, image, private_reply


async def quota_text(world: World) -> str:
    interaction = await world.slash("quota")
    return private_reply(interaction).text


async def test_role_allowances_from_command_to_spending(world: World) -> None:
    artists = world.fake.add_role(world.guild.id, "Artists")
    patrons = world.fake.add_role(world.guild.id, "Patrons")
    world.fake.add_role(world.guild.id, "Lurkers")
    world.member.role_ids.extend([artists.id, patrons.id])
    await world.fake.flush()

    said = await world.moderator_runs("quota-admin role", role=artists, credits=300)
    assert f"<@&{artists.id}>" in said and "300 credits per week" in said
    await world.moderator_runs("quota-admin role", role=patrons, credits=20)

    text = await quota_text(world)
    assert "of 300 (per week)" in text and f"Allowance from: the role <@&{artists.id}>" in text

    shown = await world.moderator_runs("video-settings show")
    assert f"<@&{artists.id}> 300" in shown and f"<@&{patrons.id}> 20" in shown
    shown = await world.moderator_runs("quota-admin show", member=world.member)
    assert f"Allowance from: the role <@&{artists.id}>" in shown

    # A video of 128 credits: more than the server default (100), within the role's 300.
    started = await world.slash(
        "video animate",
        options={"duration": 16, "resolution": "1080p", "prompt": "big"},
        attachments={"image": image()},
    )
    [job] = await world.jobs()
    assert job.price == 128 and job.state.value != "REJECTED"
    # The confirmation counts what is left of the role's allowance, not the default's.
    assert "128 credits held, 172 credits left" in private_reply(started).text
    balance = await world.core.moderation.balance(
        world.guild.id, world.member.id, [artists.id, patrons.id]
    )
    assert balance.allowance == 300 and balance.used == job.price

    # The member's own setting wins over every role.
    await world.moderator_runs("quota-admin set", member=world.member, credits=50)
    assert "of 50 (per week)" in await quota_text(world)
    assert "Allowance from: their own setting" in await quota_text(world)
    await world.moderator_runs("quota-admin set", member=world.member)  # back to roles

    # A deleted role stops counting: the next largest role of the member counts.
    world.fake.delete_role(world.guild.id, artists)
    await world.fake.flush()
    text = await quota_text(world)
    assert "of 20 (per week)" in text and f"<@&{patrons.id}>" in text
    shown = await world.moderator_runs("video-settings show")
    assert f"<@&{artists.id}>" not in shown  # listed no more

    await world.moderator_runs("quota-admin role-remove", role=patrons)
    text = await quota_text(world)
    assert "of 100 (per week)" in text and "Allowance from: the server default" in text
    refused = await world.moderator_runs("quota-admin role-remove", role=patrons)
    assert "has no allowance of its own" in refused

    rows = [e for e in await world.ledger_rows() if "role" in e.reason]
    assert [(e.kind, e.actor, e.user_id) for e in rows] == [
        ("default", str(world.moderator.id), None)
    ] * 3


async def test_members_cannot_set_role_allowances(world: World) -> None:
    role = world.fake.add_role(world.guild.id, "Artists")
    interaction = await world.slash("quota-admin role", options={"role": role, "credits": 5})
    assert "Only moderators" in private_reply(interaction).text
    assert await world.ledger_rows() == []
