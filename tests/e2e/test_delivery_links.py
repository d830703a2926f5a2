"""The video's signed link expires before delivery; the guild's upload limit comes from Discord."""

from __future__ import annotations

import asyncio

import pytest

from bot.simulator import MEDIA_PREFIX, RESULT_PATH, SimulatorConfig
from storage.models import JobState
from tests.e2e.conftest import World, image

MB = 1024 * 1024


@pytest.mark.parametrize("sim_config", [SimulatorConfig(task_seconds=0.2, video_ttl="1")])
async def test_an_expiring_link_is_renewed_before_posting(world: World) -> None:
    await world.slash("video animate", attachments={"image": image()})
    video = await world.wait_message(lambda m: bool(m.files), timeout=15)
    job = await world.wait_job(1, lambda j: j.state is JobState.DELIVERED)
    assert job.delivered_message_id == video.id
    reads = [r for r in world.sim.result_reads if r.query.get("task_id") == job.task_id]
    # The read that found the video, then one more for a fresh link before downloading.
    first_success = next(
        i for i, r in enumerate(reads) if world.sim.tasks[job.task_id or ""].progress(r.at) >= 1
    )
    assert len(reads) >= first_success + 2


@pytest.mark.parametrize("sim_config", [SimulatorConfig(task_seconds=0.2, video_ttl="1")])
async def test_a_link_that_cannot_be_renewed_ends_undeliverable(world: World) -> None:
    # Uploads fail until the service has forgotten the task, then the link can't be renewed.
    world.fake.fail("POST /channels/*/messages", 503, times=None, when=lambda r: bool(r.files))
    await world.slash("video animate", attachments={"image": image()})
    job = await world.wait_job(1, lambda j: j.state is JobState.SUCCEEDED)
    world.sim.forget_task(job.task_id or "")
    job = await world.wait_job(1, lambda j: j.state is JobState.UNDELIVERABLE, timeout=15)
    assert job.failure_reason is not None and "expired" in job.failure_reason
    assert (await world.core.moderation.balance(world.guild.id, world.member.id)).used == job.price


@pytest.mark.parametrize("sim_config", [SimulatorConfig(task_seconds=0.2, video_ttl="0")])
# So long that without a renewal in the same attempt the test would time out.
@pytest.mark.parametrize("settings_overrides", [{"delivery_retry_seconds": 60.0}])
async def test_a_dead_link_of_unknown_expiry_is_renewed(world: World) -> None:
    # TTL "0": no stated expiry, so only the download can tell that the link is dead.
    world.sim.fail_next("video", status=403, reason="AccessDenied", message="link expired")
    await world.slash("video animate", attachments={"image": image()})
    job = await world.wait_job(1, lambda j: j.state is JobState.DELIVERED, timeout=10)
    assert job.result_expires_at is None
    assert job.attempts == 0  # renewed within the first attempt, not counted as a retry
    video = world.fake.message(job.delivered_message_id or 0)
    assert video is not None and video.files

    def kind(path: str) -> str:
        return "result" if path == RESULT_PATH else "video" if path.startswith(MEDIA_PREFIX) else ""

    sequence = [kind(r.path) for r in world.sim.requests if kind(r.path)]
    # ... the read that found the video, the dead download, a fresh read, the download.
    assert sequence[-4:] == ["result", "video", "result", "video"], sequence


@pytest.mark.parametrize("sim_config", [SimulatorConfig(task_seconds=0.2, video_bytes=12 * MB)])
async def test_upload_limit_is_taken_from_the_interaction(world: World) -> None:
    """A server whose limit Discord reports as 25 MB gets the 12 MB file, not a link."""
    world.guild.attachment_size_limit = 25 * MB  # the boost tier alone would say 10 MiB
    await world.slash("video animate", attachments={"image": image()})
    video = await world.wait_message(lambda m: "your video is ready" in m.text, timeout=15)
    assert video.files and video.files[0].size == 12 * MB
    assert "download it" not in video.text


@pytest.mark.parametrize("settings_overrides", [{"delivery_retry_seconds": 1.0}])
async def test_a_dm_cut_off_is_not_sent_again_after_the_nonce_window(world: World) -> None:
    dropped = world.fake.drop_connection(
        "POST /channels/*/messages",
        when=lambda request: "vidu-dm-" in str((request.json or {}).get("nonce", "")),
    )
    await world.slash("video animate", attachments={"image": image()})
    world.fake.delete_channel(world.channel.id)
    await world.fake.wait_until(lambda: dropped.hits > 0, timeout=15)
    world.fake.advance(3600)  # far past Discord's nonce window before the bot retries
    job = await world.wait_job(1, lambda j: j.state is JobState.DELIVERED, timeout=15)
    [dm] = world.fake.dms(world.member)
    assert job.delivered_message_id == dm.id


@pytest.mark.parametrize("sim_config", [SimulatorConfig(task_seconds=0.2, video_ttl="2")])
async def test_history_and_status_renew_an_expired_link_of_an_undelivered_video(
    world: World,
) -> None:
    # The channel and DMs are both closed: the video stays in history only, by link.
    world.member.user.accepts_dms = False
    world.fake.fail("POST /channels/*/messages", 403, when=lambda r: bool(r.files), times=None)
    await world.slash("video animate", attachments={"image": image()})
    job = await world.wait_job(1, lambda j: j.state is JobState.UNDELIVERABLE, timeout=15)
    stale = job.result_url
    assert stale is not None and job.result_expires_at is not None
    await asyncio.sleep(2.5)  # the stored link has expired
    reads_before = len(world.sim.result_reads)

    history = await world.slash("video history")
    text = history.last_message.text if history.last_message else ""
    renewed = await world.core.lifecycle.get_job(job.id)
    assert renewed is not None and renewed.result_url not in (None, stale)
    assert f"[video]({renewed.result_url})" in text and "link expired" not in text
    assert len(world.sim.result_reads) == reads_before + 1  # one read renewed it
    assert renewed.state is JobState.UNDELIVERABLE  # nothing else about the job changed

    await asyncio.sleep(2.5)
    status = await world.slash("video status", options={"job": job.id})
    again = await world.core.lifecycle.get_job(job.id)
    assert again is not None and again.result_url not in (None, renewed.result_url)
    assert status.last_message is not None and again.result_url in status.last_message.text
