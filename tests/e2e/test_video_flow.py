"""A member makes videos: from the slash command to the video posted under its card."""

from __future__ import annotations

from storage.models import JobState
from tests.e2e.conftest import World, image


async def test_animate_posts_card_then_video(world: World) -> None:
    interaction = await world.slash(
        "video animate",
        options={"prompt": "the cat waves @everyone", "duration": 4, "resolution": "540p"},
        attachments={"image": image()},
    )
    assert interaction.ephemeral
    reply = interaction.last_message
    assert reply is not None and "Job #1" in reply.text, interaction.texts

    card = await world.wait_message(lambda m: "Video job #1" in m.text)
    assert "the cat waves @everyone" in card.text
    assert card.pinged_user_ids == [] and not card.pings_everyone

    video = await world.wait_message(lambda m: bool(m.files), timeout=15)
    assert video.reply_to == card.id
    assert video.pinged_user_ids == [world.member.id] and not video.pings_everyone
    assert video.files[0].data.startswith(b"\x00\x00\x00") or b"ftyp" in video.files[0].data[:16]
    job = await world.wait_job(1, lambda j: j.state is JobState.DELIVERED)
    assert job.delivered_message_id == video.id
    submitted = world.sim.submissions
    assert len(submitted) == 1
    assert submitted[0].json["duration"] == 4
