"""Every option is checked by the bot, not only by Discord's client: a request that skips the
client's checks is refused in words, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import World, image, private_reply

HUGE_ID = 2**63  # one more than a signed 64-bit id can hold


async def rogue(world: World, command: str, *, moderator: bool = False, **options: Any) -> str:
    """Run a command the way a client that skips Discord's option checks could."""
    interaction = await world.fake.invoke_slash(
        world.guild.id,
        world.channel.id,
        world.moderator if moderator else world.member,
        command,
        options=options,
        validate=False,
    )
    await interaction.wait_message(timeout=10)
    await interaction.wait_idle(timeout=10)
    return private_reply(interaction).text


@pytest.mark.parametrize(
    ("command", "options", "words"),
    [
        ("quota-admin grant", {"member": ..., "credits": 10**12, "reason": "x"}, "between -1,"),
        ("quota-admin grant", {"member": ..., "credits": 5, "reason": "x" * 201}, "at most 200"),
        ("quota-admin set", {"member": ..., "credits": -5}, "between 0 and"),
        ("quota-admin default", {"credits": 10**10, "period": "week"}, "between 0 and"),
        ("quota-admin default", {"credits": 5, "period": "fortnight"}, "one of: day, week"),
        ("quota-admin log", {"page": 0}, "between 1 and"),
        ("video-settings concurrency", {"jobs": 51}, "between 1 and 50"),
        ("video-settings daily-cap", {"credits": -1}, "between 0 and"),
    ],
)
async def test_moderator_options_out_of_bounds_are_refused_and_change_nothing(
    world: World, command: str, options: dict[str, Any], words: str
) -> None:
    # `...` stands for the member the moderator names.
    options = {key: world.member if value is ... else value for key, value in options.items()}
    before = await world.ledger_rows()
    text = await rogue(world, command, moderator=True, **options)
    assert words in text and "Nothing was changed" in text, text
    assert "incident" not in text
    assert await world.ledger_rows() == before


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"duration": 0}, "`duration` must be between 1 and 16"),
        ({"duration": 17}, "`duration` must be between 1 and 16"),
        ({"seed": -1}, "`seed` must be between 0 and"),
        ({"resolution": "4k"}, "`resolution` must be one of: 540p, 720p, 1080p"),
        ({"prompt": "a" * 1501}, "`prompt` can be at most 1500 characters"),
    ],
)
async def test_video_options_out_of_bounds_spend_nothing(
    world: World, options: dict[str, Any], words: str
) -> None:
    text = await rogue(world, "video animate", image=image(), **options)
    assert words in text, text
    assert await world.jobs() == [] and world.sim.submissions == []
    assert await world.ledger_rows() == []


async def test_a_job_id_beyond_64_bits_is_a_clear_refusal(world: World) -> None:
    text = await rogue(world, "video status", job=HUGE_ID)
    assert "incident" not in text and "job" in text, text
    # A re-roll button naming such a job (however it came to be) is refused the same way.
    bot_user = world.fake.bot_user
    message = world.fake.add_message(
        world.channel.id,
        bot_user,
        "a video",
        components=[
            {
                "type": 1,
                "components": [
                    {"type": 2, "style": 2, "label": "Re-roll", "custom_id": f"reroll:{HUGE_ID}"}
                ],
            }
        ],
    )
    click = await world.fake.click_button(message, f"reroll:{HUGE_ID}", world.member)
    await click.wait_message(timeout=10)
    await click.wait_idle(timeout=10)
    text = private_reply(click).text
    assert f"no job #{HUGE_ID}" in text and "incident" not in text, text
    assert world.sim.submissions == []
