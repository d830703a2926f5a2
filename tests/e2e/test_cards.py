"""The job card is posted exactly once and recovered like the video: an answer lost on the
way is found again, and a member promised a direct message gets one."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.core import poller
from bot.core.quota import utcnow
from bot.discord import delivery
from bot.simulator import SimulatorConfig
from storage.models import JobState
from tests.e2e.conftest import World, image
from tests.e2e.helpers import UPLOAD, card_of, card_shows, finished, posts_of
from tests.fakediscord.models import RecordedRequest


def card_post(request: RecordedRequest) -> bool:
    return bool((request.json or {}).get("embeds")) and not request.files


def cards_of(world: World, job_id: int) -> list[object]:
    bot_id = world.fake.bot_user.id
    return [
        m
        for m in world.public_messages()
        if m.author_id == bot_id
        and any(str(e.get("title", "")).startswith(f"Video job #{job_id} ·") for e in m.embeds)
    ]


@pytest.fixture(autouse=True)
def quick_card_phase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(poller, "CARD_GRACE_SECONDS", 0.3)


async def animate(world: World) -> list[str]:
    interaction = await world.slash(
        "video animate", options={"prompt": "a cat waves"}, attachments={"image": image()}
    )
    return interaction.texts


async def test_a_card_whose_answer_is_lost_once_is_recorded_from_the_retry(world: World) -> None:
    world.fake.drop_connection(UPLOAD, when=card_post)  # Discord stores it; the answer is lost
    texts = await animate(world)
    [job] = await world.jobs()
    assert job.card_state == "posted" and job.card_message_id is not None
    assert "Follow it on its card" in texts[-1]
    done = await finished(world, job)
    assert len(cards_of(world, job.id)) == 1  # the retry carried the same nonce
    [video] = posts_of(world, done)
    assert video.reply_to == done.card_message_id
    await card_shows(world, done, "Done")


@pytest.mark.parametrize("sim_config", [SimulatorConfig(task_seconds=1.0)])
async def test_a_card_the_command_could_not_confirm_is_found_again_and_finished(
    world: World,
) -> None:
    # Every answer to the card post is lost, as if the bot had been killed right after it.
    world.fake.drop_connection(UPLOAD, when=card_post, times=3)
    texts = await animate(world)
    assert "Its card will appear in this channel" in texts[-1], texts
    [job] = await world.jobs()

    done = await finished(world, job, timeout=15)
    assert done.card_state == "posted"
    [card] = cards_of(world, job.id)
    assert done.card_message_id == card.id  # found in history, not posted again
    assert world.fake.find_requests(f"GET /channels/{world.channel.id}/messages")
    [video] = posts_of(world, done)
    assert video.reply_to == done.card_message_id  # the video still replies to its card
    await card_shows(world, done, "Done")  # not left at "Queued · 0% · held"


async def test_a_member_promised_a_dm_gets_the_video_by_dm(world: World) -> None:
    world.fake.fail(UPLOAD, 403, when=card_post)  # the card can never be posted here
    texts = await animate(world)
    assert "I will tell you by direct message" in texts[-1]
    [job] = await world.jobs()
    done = await finished(world, job)
    assert done.state is JobState.DELIVERED
    [dm] = world.fake.dms(world.member)
    assert f"job #{job.id}" in dm.content and "is ready" in dm.content
    assert done.delivered_message_id == dm.id
    assert cards_of(world, job.id) == []


async def test_without_read_message_history_a_post_that_may_have_landed_is_never_repeated(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakediscord.models import READ_MESSAGE_HISTORY, Overwrite

    world.sim.config.task_seconds = 600
    await animate(world)
    [job] = await world.jobs()
    card_of(world, job)
    # Read Message History is taken away after the job started, and the upload lands but
    # its answer is lost, twice...
    world.channel.overwrites.append(Overwrite(world.fake.bot_user.id, 1, 0, READ_MESSAGE_HISTORY))
    world.fake.drop_connection(UPLOAD, when=lambda r: bool(r.files), times=2)
    world.sim.finish_task(job.task_id or "")
    await world.wait_job(job.id, lambda j: j.delivery_uncertain_at is not None)
    # ...and the next attempt comes after Discord's nonce window: nothing can tell whether
    # the video is in the channel, so it is not posted there again but sent by DM.
    later = world.fake.nonce_window + 60
    world.fake.advance(later)
    monkeypatch.setattr(delivery, "utcnow", lambda: utcnow() + timedelta(seconds=later))
    done = await finished(world, job, timeout=15)
    channel_posts = [m for m in posts_of(world, done) if m.channel_id == world.channel.id]
    assert len(channel_posts) == 1  # the one that landed
    [dm] = world.fake.dms(world.member)
    assert done.delivered_message_id == dm.id and "reached your channel" in dm.content
