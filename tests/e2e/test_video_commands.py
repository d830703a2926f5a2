"""/video reference, status, history and the Re-roll button, end to end."""

from __future__ import annotations

import pytest

from bot.simulator import SimulatorConfig
from storage.models import JobState
from tests.e2e.conftest import World, image


async def test_reference_sends_subjects_and_voices(world: World) -> None:
    interaction = await world.slash(
        "video reference",
        options={
            "prompt": "@1 dances with @3",
            "voices": "1=voice_a 3=voice_c",
            "movement": "high",
            "bgm": True,
            "duration": 6,
        },
        attachments={
            "subject1": image("a.png"),
            "subject3": image("c.webp", content_type="image/webp"),
        },
    )
    assert "Job #1" in " ".join(interaction.texts), interaction.texts
    [request] = world.sim.submissions
    assert request.path.endswith("/vidu-q2-reference2video")
    body = request.json
    assert body["prompt"] == "@1 dances with @3"
    assert [(s["id"], s.get("voice_id")) for s in body["subjects"]] == [
        ("1", "voice_a"),
        ("3", "voice_c"),
    ]
    assert all(
        len(s["images"]) == 1 and s["images"][0].startswith("http") for s in body["subjects"]
    )
    assert body["movement_amplitude"] == "high" and body["bgm"] is True and body["duration"] == 6
    await world.wait_message(lambda m: bool(m.files), timeout=15)
    job = await world.wait_job(1, lambda j: j.state is JobState.DELIVERED)
    assert job.price == 36  # Q2, 720p: 6 credits a second
    assert {ref.subject for ref in job.inputs} == {1, 3}


async def test_animate_turbo_with_music(world: World) -> None:
    from tests.fakediscord import AttachmentSpec

    await world.slash(
        "video animate",
        options={"model": "vidu-q3-turbo-i2v", "off_peak": True, "style": "anime", "seed": 42},
        attachments={
            "image": image(),
            "music": AttachmentSpec("song.mp3", "audio/mpeg", size=3_000_000),
        },
    )
    [request] = world.sim.submissions
    assert request.path.endswith("/vidu-q3-turbo-i2v")
    assert request.json["audio"].startswith("http") and "song.mp3" in request.json["audio"]
    assert request.json["off_peak"] is True and request.json["seed"] == 42
    job = await world.core.lifecycle.get_job(1)
    assert job is not None
    assert job.price == 8  # Turbo 720p is 3/s → 15, halved off-peak and rounded up


async def test_history_and_status(world: World) -> None:
    await world.slash("video animate", options={"prompt": "first"}, attachments={"image": image()})
    await world.wait_job(1, lambda j: j.state is JobState.DELIVERED, timeout=15)
    await world.slash(
        "video animate", options={"prompt": "bad forbidden"}, attachments={"image": image()}
    )
    await world.wait_job(2, lambda j: j.state is JobState.FAILED, timeout=15)

    history = await world.slash("video history")
    text = history.last_message.text if history.last_message else ""
    assert "#1" in text and "delivered" in text and "[video](" in text
    assert "#2" in text and "failed" in text

    status = await world.slash("video status", options={"job": 2})
    assert "Video job #2" in " ".join(status.texts)
    assert "returned" in " ".join(status.texts)

    # Someone else's job is not shown to a member...
    other = world.fake.add_member(world.guild.id, "bob")
    refused = await world.slash("video status", user=other, options={"job": 1})
    assert "Video job #1" not in " ".join(refused.texts)
    # ...but a moderator sees every job of the server.
    seen = await world.slash("video status", user=world.moderator, options={"job": 1})
    assert "Video job #1" in " ".join(seen.texts)


async def test_status_autocomplete_lists_own_recent_jobs(world: World) -> None:
    await world.slash("video animate", options={"prompt": "sunset"}, attachments={"image": image()})
    await world.slash(
        "video animate", options={"prompt": "harbour"}, attachments={"image": image()}
    )
    interaction = await world.fake.invoke_autocomplete(
        world.guild.id, world.channel.id, world.member, "video status", focused="job", value="harb"
    )
    choices = await interaction.wait_choices()
    assert [c["value"] for c in choices] == [2]
    assert "harbour" in choices[0]["name"]


async def reroll_button(world: World) -> tuple[int, str]:
    video = await world.wait_message(lambda m: bool(m.files), timeout=15)
    [button] = video.buttons
    return video.id, button["custom_id"]


async def test_reroll_charges_the_clicker_with_a_new_seed(world: World) -> None:
    await world.slash(
        "video animate", options={"prompt": "a fox", "seed": 7}, attachments={"image": image()}
    )
    message_id, custom_id = await reroll_button(world)
    await world.wait_job(1, lambda j: j.state is JobState.DELIVERED)
    clicker = world.fake.add_member(world.guild.id, "carol")
    click = await world.fake.click_button(message_id, custom_id, clicker)
    await click.wait_message(timeout=10)
    assert "Job #2" in " ".join(click.texts), click.texts
    job = await world.wait_job(2, lambda j: j.state is JobState.DELIVERED, timeout=15)
    assert job.user_id == clicker.id and job.reroll_of == 1
    first, second = world.sim.submissions
    assert second.json["prompt"] == "a fox"
    assert second.json["seed"] != first.json["seed"]
    assert (await world.core.moderation.balance(world.guild.id, clicker.id)).used == job.price
    assert (await world.core.moderation.balance(world.guild.id, world.member.id)).used == job.price


async def test_reroll_refreshes_expired_input_links(world: World) -> None:
    await world.slash("video animate", attachments={"image": image()})
    message_id, custom_id = await reroll_button(world)
    world.fake.advance(2 * 24 * 3600)  # the attachment links from the command are dead now
    click = await world.fake.click_button(message_id, custom_id, world.member)
    await click.wait_message(timeout=10)
    assert "Job #2" in " ".join(click.texts), click.texts
    first, second = world.sim.submissions
    assert second.json["images"] != first.json["images"]
    assert world.fake.find_requests("POST /attachments/refresh-urls")


async def test_reroll_says_so_when_inputs_are_gone(world: World) -> None:
    await world.slash("video animate", attachments={"image": image()})
    message_id, custom_id = await reroll_button(world)
    job = await world.core.lifecycle.get_job(1)
    assert job is not None
    world.fake.advance(2 * 24 * 3600)
    world.fake.delete_attachment(job.inputs[0].url)
    click = await world.fake.click_button(message_id, custom_id, world.member)
    await click.wait_message(timeout=10)
    assert "no longer stored on Discord" in " ".join(click.texts)
    assert len(world.sim.submissions) == 1
    assert len(await world.jobs()) == 1


@pytest.mark.parametrize("sim_config", [SimulatorConfig(task_seconds=0.3)])
async def test_reroll_checks_the_clickers_quota(world: World) -> None:
    await world.slash("video animate", attachments={"image": image()})
    message_id, custom_id = await reroll_button(world)
    poor = world.fake.add_member(world.guild.id, "dave")
    await world.core.moderation.set_allowance(world.guild.id, poor.id, 5, world.moderator.id)
    click = await world.fake.click_button(message_id, custom_id, poor)
    await click.wait_message(timeout=10)
    assert "5 credits left" in " ".join(click.texts), click.texts
    assert len(world.sim.submissions) == 1


@pytest.mark.parametrize("sim_config", [SimulatorConfig(task_seconds=0)])
async def test_a_job_that_ends_while_its_card_is_posted_still_shows_the_end(world: World) -> None:
    # Discord holds the card back for a second; the task fails meanwhile.
    world.fake.fail(
        "POST /channels/*/messages",
        429,
        retry_after=1.0,
        when=lambda request: bool((request.json or {}).get("embeds")),
    )
    await world.slash(
        "video animate", options={"prompt": "forbidden dance"}, attachments={"image": image()}
    )
    job = await world.wait_job(
        1, lambda j: j.state is JobState.FAILED and j.card_message_id is not None
    )
    card_id = job.card_message_id
    await world.fake.wait_until(lambda: "Failed" in world.fake.message(card_id).text, timeout=10)
    assert "returned" in world.fake.message(card_id).text


@pytest.mark.parametrize("sim_config", [SimulatorConfig(task_seconds=0.3)])
async def test_a_double_click_on_reroll_pays_for_one_video(world: World) -> None:
    import asyncio

    await world.slash("video animate", attachments={"image": image()})
    message_id, custom_id = await reroll_button(world)
    world.sim.delay_next("submit", seconds=0.5)
    clicks = await asyncio.gather(
        world.fake.click_button(message_id, custom_id, world.member),
        world.fake.click_button(message_id, custom_id, world.member),
    )
    for click in clicks:
        await click.wait_message(timeout=10)
    texts = sorted(" ".join(click.texts) for click in clicks)
    assert "Job #2 is on its way" in texts[0] or "Job #2 is on its way" in texts[1]
    assert any("already on its way" in text for text in texts), texts
    assert len(world.sim.submissions) == 2  # the original and one re-roll
