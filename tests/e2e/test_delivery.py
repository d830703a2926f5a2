"""The poller and delivery, end to end: every way a finished (or failed) video reaches a member.

Each test runs `/video animate` through the real bot, lets the real background poller carry
the job, and checks what the fake Discord recorded and what the job row and ledger say.
Tests that must act between submission and result use a slow simulated task and end it with
`sim.finish_task`, so nothing depends on a race.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator

import pytest

from bot.app import build_delivery
from bot.core import lifecycle, poller
from bot.core.durations import KEEP, bucket_of
from bot.core.quota import utcnow
from bot.discord import delivery as delivery_module
from bot.settings import Settings
from bot.simulator import SimulatorConfig
from storage.models import Job, JobState
from tests.e2e.conftest import World, image
from tests.e2e.helpers import (
    HISTORY,
    UPLOAD,
    animate,
    card_of,
    card_shows,
    card_versions,
    embed_text,
    finished,
    has_files,
    posts_of,
    slow,
    upload_requests,
)
from tests.fakediscord import StoredMessage
from tests.fakediscord.models import RecordedRequest

TIMESTAMP = re.compile(r"<t:(\d+):R>")


@pytest.fixture(autouse=True)
def no_unexpected_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every branch here is an outcome the poller and delivery handle, never a crash."""
    caplog.set_level(logging.WARNING)
    yield
    broken = [
        r.getMessage()
        for r in caplog.get_records("call")
        if r.name.startswith(("bot.core", "bot.discord")) and r.levelno >= logging.ERROR
    ]
    assert broken == []


async def ledger_kinds(world: World, job: Job) -> list[str]:
    page = await world.core.moderation.ledger(world.guild.id, world.member.id, per_page=50)
    return sorted(entry.kind for entry in page.entries if entry.job_id == job.id)


# --- progress on the card --------------------------------------------------------------------


@pytest.mark.parametrize("sim_config", [SimulatorConfig(task_seconds=1.5)])
async def test_card_follows_the_job_and_never_pings(world: World) -> None:
    job = await animate(world, "hello <@&1> @everyone @here")
    await finished(world, job)
    card = await card_shows(world, job, "Done")

    versions = card_versions(card)
    titles = [v["title"] for v in versions]
    assert titles[0].endswith("Queued") and titles[-1].endswith("Done"), titles
    rendering = [embed_text(v) for v in versions if v["title"].endswith("Rendering")]
    assert rendering, titles
    percents = [int(p) for text in rendering for p in re.findall(r"(\d+)%", text)]
    assert percents and all(0 < p < 100 for p in percents), rendering
    assert percents == sorted(percents)
    assert "charged" in embed_text(versions[-1])

    # Edited through the ordinary message (not the interaction token), pinging nobody.
    edits = world.fake.find_requests(f"PATCH /channels/{world.channel.id}/messages/{card.id}")
    assert len(edits) == len(versions) - 1
    for edit in edits:
        mentions = edit.json.get("allowed_mentions")
        assert mentions is not None and not mentions.get("parse") and not mentions.get("users")
    assert card.pinged_user_ids == [] and card.pinged_role_ids == [] and not card.pings_everyone


@pytest.mark.parametrize("sim_config", [SimulatorConfig(task_seconds=2.0)])
@pytest.mark.parametrize("settings_overrides", [{"card_edit_interval_seconds": 0.7}])
async def test_progress_edits_are_throttled(world: World) -> None:
    job = await animate(world)
    await finished(world, job)
    card = await card_shows(world, job, "Done")

    edits = world.fake.find_requests(f"PATCH /channels/{world.channel.id}/messages/{card.id}")
    titles = [e.json["embeds"][0]["title"] for e in edits]
    assert titles[-1].endswith("Done"), titles
    progress = [e for e in edits if not e.json["embeds"][0]["title"].endswith("Done")]
    gaps = [b.at - a.at for a, b in itertools.pairwise(progress)]
    assert all(gap >= 0.7 - 0.05 for gap in gaps), gaps
    reads = [r for r in world.sim.result_reads if r.query.get("task_id") == job.task_id]
    assert len(reads) > len(progress), (len(reads), titles)


@pytest.mark.parametrize("sim_config", [SimulatorConfig(task_seconds=600)])
@pytest.mark.parametrize("settings_overrides", [{"card_edit_interval_seconds": 0}])
async def test_a_bar_that_moved_less_than_a_step_is_not_worth_an_edit(world: World) -> None:
    # Even with no interval between edits, a poll that moves the bar a point or two does
    # not edit the card (its bar is redrawn in steps): 25 small moves, a couple of edits.
    job = await animate(world)
    card = card_of(world, job)
    edits = f"PATCH /channels/{world.channel.id}/messages/{card.id}"
    before = len(world.fake.find_requests(edits))
    assert world.bot.delivery is not None
    for percent in range(1, 26):
        await world.bot.delivery.job_changed(
            job.model_copy(update={"state": JobState.PROCESSING, "progress": percent})
        )
    made = len(world.fake.find_requests(edits)) - before
    assert 1 <= made <= 4, made  # the state's change, then every ten points
    [shown] = re.findall(r"(\d+)%", embed_text(card.embeds[0]))
    assert 20 <= int(shown) <= 25  # the bar did move, in steps


@pytest.mark.parametrize("sim_config", [SimulatorConfig(task_seconds=1.0)])
@pytest.mark.parametrize("settings_overrides", [{"card_edit_interval_seconds": 60}])
async def test_terminal_state_lands_inside_the_interval(world: World) -> None:
    job = await animate(world)
    await finished(world, job)
    card = await card_shows(world, job, "Done")
    edits = world.fake.find_requests(f"PATCH /channels/{world.channel.id}/messages/{card.id}")
    # One progress edit, then nothing until the ending, which is never held back.
    assert len(edits) == 2, [e.json["embeds"][0]["title"] for e in edits]
    reads = [r for r in world.sim.result_reads if r.query.get("task_id") == job.task_id]
    assert len(reads) >= 3


@pytest.mark.parametrize("sim_config", [SimulatorConfig(task_seconds=1.0)])
@pytest.mark.parametrize(
    "settings_overrides", [{"card_edit_interval_seconds": 0.5, "delivery_retry_seconds": 0.2}]
)
async def test_a_held_back_state_is_drawn_once_the_interval_passes(world: World) -> None:
    # The upload fails for a while: the card must not stay on "Rendering" meanwhile.
    world.fake.fail(UPLOAD, 503, when=has_files, times=3)
    job = await animate(world)
    await finished(world, job, timeout=15)
    card = await card_shows(world, job, "Done")

    edits = world.fake.find_requests(f"PATCH /channels/{world.channel.id}/messages/{card.id}")
    titles = [e.json["embeds"][0]["title"].split(" · ")[1] for e in edits]
    assert titles[-2:] == ["Finished, posting the video", "Done"], titles
    progress = edits[:-1]
    gaps = [b.at - a.at for a, b in itertools.pairwise(progress)]
    assert all(gap >= 0.5 - 0.05 for gap in gaps), gaps


# --- success ------------------------------------------------------------------------------------


async def test_success_uploads_the_video_under_the_card(world: World) -> None:
    before = await world.core.moderation.balance(world.guild.id, world.member.id)
    job = await animate(world, "a dog, hi @everyone")
    done = await finished(world, job)

    [video] = posts_of(world, job)
    assert video.channel_id == world.channel.id
    assert video.reply_to == job.card_message_id
    assert video.pinged_user_ids == [world.member.id]
    assert video.pinged_role_ids == [] and not video.pings_everyone
    assert len(video.files) == 1 and video.files[0].filename == f"vidu-job-{job.id}.mp4"
    assert b"ftyp" in video.files[0].data[:16]
    assert video.component(f"reroll:{job.id}")["label"] == "Re-roll"
    assert len(upload_requests(world)) == 1

    assert done.delivered_message_id == video.id
    assert done.finished_at is not None
    after = await world.core.moderation.balance(world.guild.id, world.member.id)
    assert after.held == 0 and after.used == before.used + job.price
    assert after.available == (before.available or 0) - job.price
    assert await ledger_kinds(world, job) == ["commit", "hold"]
    await card_shows(world, job, "Done")


# --- too large ----------------------------------------------------------------------------------


def assert_link_post(world: World, job: Job, post: StoredMessage) -> None:
    assert job.result_url and job.result_url in post.content
    assert "download it" in post.content and not post.files
    [stamp] = TIMESTAMP.findall(post.content)
    assert job.result_expires_at is not None
    assert int(stamp) == int(job.result_expires_at.timestamp())
    assert post.pinged_user_ids == [world.member.id] and not post.pings_everyone


async def test_upload_refused_as_too_large_posts_the_link(world: World) -> None:
    world.fake.fail(UPLOAD, 413, when=has_files)
    job = await animate(world)
    done = await finished(world, job)

    [post] = posts_of(world, job)
    assert_link_post(world, done, post)
    assert post.channel_id == world.channel.id and post.reply_to == job.card_message_id
    assert post.component(f"reroll:{job.id}")
    refused = upload_requests(world)
    assert [r.status for r in refused] == [413]
    assert refused[0].response["code"] == 40005
    assert done.delivered_message_id == post.id


@pytest.mark.parametrize(
    ("sim_config", "settings_overrides"),
    [
        # Over the server's 10 MiB (an unboosted guild): known from the announced length.
        (SimulatorConfig(task_seconds=0.3, video_bytes=10 * 1024 * 1024 + 1), {}),
        # Under the server's limit but over what the operator lets the bot download.
        (SimulatorConfig(task_seconds=0.3), {"max_video_bytes": 1024}),
    ],
    ids=["over-guild-limit", "over-max-video-bytes"],
)
async def test_video_over_the_limit_is_linked_without_uploading(world: World) -> None:
    assert world.guild.upload_limit == 10 * 1024 * 1024
    job = await animate(world)
    done = await finished(world, job)

    [post] = posts_of(world, job)
    assert_link_post(world, done, post)
    assert upload_requests(world) == []
    assert done.delivered_message_id == post.id


# --- channel gone, no permission, DMs ---------------------------------------------------------


@pytest.mark.parametrize("sim_config", [slow()])
@pytest.mark.parametrize("how", ["channel deleted", "403 on upload"])
async def test_no_way_into_the_channel_sends_the_link_by_dm(world: World, how: str) -> None:
    job = await animate(world)
    if how == "channel deleted":
        world.fake.delete_channel(world.channel.id)
    else:
        world.fake.fail(UPLOAD, 403, when=has_files)
    world.sim.finish_task(job.task_id or "")
    done = await finished(world, job)

    [dm] = world.fake.dms(world.member)
    assert done.result_url and done.result_url in dm.content
    assert f"job #{job.id}" in dm.content
    [stamp] = TIMESTAMP.findall(dm.content)
    assert done.result_expires_at is not None
    assert int(stamp) == int(done.result_expires_at.timestamp())
    assert done.delivered_message_id == dm.id
    assert [p.id for p in posts_of(world, job)] == [dm.id]
    if how == "403 on upload":
        assert [r.status for r in upload_requests(world)] == [403]
    else:
        assert upload_requests(world) == []


@pytest.mark.parametrize("sim_config", [slow()])
@pytest.mark.parametrize("how", ["channel deleted", "403 on upload"])
async def test_dm_refused_too_leaves_the_video_in_history(world: World, how: str) -> None:
    world.member.user.accepts_dms = False
    job = await animate(world)
    if how == "channel deleted":
        world.fake.delete_channel(world.channel.id)
    else:
        world.fake.fail(UPLOAD, 403, when=has_files, times=None)
    world.sim.finish_task(job.task_id or "")
    done = await finished(world, job, JobState.UNDELIVERABLE)

    assert done.failure_reason and "/video history" in done.failure_reason
    assert posts_of(world, job) == []
    dm_tries = world.fake.find_requests("POST /channels/*/messages")
    assert any(r.status == 403 and r.response["code"] == 50007 for r in dm_tries)
    # Made, so charged: the member has the video, by link.
    balance = await world.core.moderation.balance(world.guild.id, world.member.id)
    assert balance.held == 0 and balance.used == job.price
    if how == "403 on upload":
        await card_shows(world, job, "could not post it")

    history = await world.slash("video history", channel=world.other_channel)
    assert history.last_message is not None
    text = history.last_message.text
    assert f"#{job.id}" in text and "undeliverable" in text
    assert f"[video]({done.result_url})" in text


# --- Discord trouble that passes ------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "status"),
    [(UPLOAD, 503), (UPLOAD, 500), (HISTORY, 503), (UPLOAD, 429)],
    ids=["upload-503", "upload-500", "history-503", "upload-429"],
)
async def test_discord_trouble_is_retried_and_delivers_once(
    world: World, route: str, status: int
) -> None:
    world.fake.fail(
        route, status, retry_after=0.2, when=has_files if route == UPLOAD else None, times=1
    )
    job = await animate(world)
    done = await finished(world, job, timeout=15)

    [video] = posts_of(world, job)
    assert video.files and done.delivered_message_id == video.id
    failed = [r for r in world.fake.find_requests(route) if r.status == status]
    assert len(failed) == 1
    uploads = upload_requests(world)
    if status in (503,):
        # Our own retry, a delivery attempt later (counted on the job).
        assert done.attempts == 1
    if route == UPLOAD:
        # discord.py retries 500 and 429 itself; a 503 comes back to us. Either way, twice.
        assert [r.status for r in uploads] == [status, 200]
    else:
        assert [r.status for r in uploads] == [200]


async def test_a_card_edit_that_fails_is_made_again(world: World) -> None:
    def final_edit(request: RecordedRequest) -> bool:
        embeds = (request.json or {}).get("embeds") or [{}]
        return str(embeds[0].get("title", "")).endswith("Done")

    world.fake.fail("PATCH /channels/*/messages/*", 503, when=final_edit)
    job = await animate(world)
    await finished(world, job)
    card = await card_shows(world, job, "Done")
    finals = world.fake.find_requests(f"PATCH /channels/*/messages/{card.id}")
    assert [r.status for r in finals if final_edit(r)] == [503, 200]


@pytest.mark.parametrize("settings_overrides", [{"delivery_retry_seconds": 0.1}])
async def test_delivery_retries_back_off_exponentially(world: World) -> None:
    # An outage of Discord: each failed attempt waits twice as long as the one before.
    world.fake.fail(UPLOAD, 503, when=has_files, times=4)
    job = await animate(world)
    done = await finished(world, job, timeout=15)

    uploads = upload_requests(world)
    assert [r.status for r in uploads] == [503, 503, 503, 503, 200]
    assert done.attempts == 4
    gaps = [b.at - a.at for a, b in itertools.pairwise(uploads)]
    # 0.1, 0.2, 0.4, 0.8 s, each plus at most a poller tick (0.05 s) and some work.
    for gap, wanted in zip(gaps, [0.1, 0.2, 0.4, 0.8], strict=True):
        assert wanted - 0.02 <= gap <= wanted + 0.3, gaps
    [video] = posts_of(world, job)
    assert done.delivered_message_id == video.id


@pytest.mark.parametrize("settings_overrides", [{"delivery_retry_seconds": 0.01}])
async def test_posting_that_keeps_failing_ends_undeliverable(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real cap is about a day of trying; a small one shows what happens at the end.
    monkeypatch.setattr(poller, "MAX_DELIVERY_ATTEMPTS", 4)
    world.fake.fail(UPLOAD, 503, when=has_files, times=None)
    job = await animate(world)
    done = await finished(world, job, JobState.UNDELIVERABLE, timeout=20)
    assert done.failure_reason and "kept failing" in done.failure_reason
    # Exactly as many attempts as the cap says: the last one is made, then it stops.
    assert len(upload_requests(world)) == 4
    await card_shows(world, job, "could not post it")
    balance = await world.core.moderation.balance(world.guild.id, world.member.id)
    assert balance.used == job.price and balance.held == 0


@pytest.mark.parametrize("history_readable", [True, False], ids=["history", "nonce"])
async def test_crash_during_upload_posts_the_video_once(
    world: World, history_readable: bool
) -> None:
    # The upload lands, then the socket closes before the answer: the bot cannot tell.
    world.fake.drop_connection(UPLOAD, when=has_files)
    if not history_readable:
        # No Read Message History: only the message nonce can stop a second post.
        world.fake.fail(HISTORY, 403, times=None)
    job = await animate(world)
    done = await finished(world, job, timeout=15)

    [video] = posts_of(world, job)
    assert video.files and done.delivered_message_id == video.id
    uploads = upload_requests(world)
    assert uploads[0].status is None  # dropped
    if history_readable:
        assert len(uploads) == 1  # found in the channel's history; not sent again
    else:
        assert len(uploads) == 2 and uploads[1].response["id"] == str(video.id)
    balance = await world.core.moderation.balance(world.guild.id, world.member.id)
    assert balance.used == job.price and balance.held == 0


@pytest.mark.parametrize("sim_config", [slow()])
@pytest.mark.parametrize("settings_overrides", [{"delivery_retry_seconds": 1.0}])
async def test_an_earlier_post_is_found_in_a_busy_channel(world: World) -> None:
    # The channel is busy between the card and the upload, whose answer is lost; the retry
    # comes after Discord's nonce window, so only the history check can stop a second post.
    dropped = world.fake.drop_connection(UPLOAD, when=has_files)
    job = await animate(world)
    for n in range(70):
        world.fake.add_message(world.channel.id, world.moderator, f"chat {n}", dispatch=False)
    world.sim.finish_task(job.task_id or "")
    await world.fake.wait_until(lambda: dropped.hits > 0, timeout=10)
    world.fake.advance(3600)
    done = await finished(world, job, timeout=15)

    [video] = posts_of(world, job)
    assert video.files and done.delivered_message_id == video.id
    assert len(upload_requests(world)) == 1


@pytest.mark.parametrize("sim_config", [slow()])
async def test_another_jobs_post_is_not_taken_for_this_one(world: World) -> None:
    # A post of job #1x after the card must not count as job #1's video.
    job = await animate(world)
    assert job.id == 1
    decoy = world.fake.add_message(
        world.channel.id,
        world.fake.bot_user.id,
        f"<@{world.member.id}> your video is ready · job #12\n"
        "It is too large to upload here; download it: https://example.invalid/v.mp4",
    )
    world.sim.finish_task(job.task_id or "")
    done = await finished(world, job)
    [video] = posts_of(world, job)
    assert video.files and done.delivered_message_id == video.id != decoy.id


# --- the API says no ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        (None, "did not pass content moderation"),
        ("ILLEGAL_IMAGE_CONTENT", "refused the image (content policy)"),
    ],
    ids=["fail-word", "fail-next-task"],
)
async def test_api_failure_is_explained_and_credits_returned(
    world: World, reason: str | None, words: str
) -> None:
    if reason is None:
        job = await animate(world, "a forbidden dance")
    else:
        world.sim.fail_next_task(reason)
        job = await animate(world)
    held = await world.core.moderation.balance(world.guild.id, world.member.id)
    assert held.held == job.price
    done = await finished(world, job, JobState.FAILED)

    assert done.failure_reason and words in done.failure_reason
    card = await card_shows(world, job, "Failed")
    text = embed_text(card.embeds[0])
    assert words in text and f"The {job.price} credits were returned to you." in text
    assert f"{job.price} credits (returned)" in text
    assert card.pinged_user_ids == []
    assert posts_of(world, job) == [] and world.fake.dms(world.member) == []
    balance = await world.core.moderation.balance(world.guild.id, world.member.id)
    assert balance.held == 0 and balance.used == 0 and balance.available == 100
    assert await ledger_kinds(world, job) == ["hold", "release"]


def card_post(request: RecordedRequest) -> bool:
    return bool((request.json or {}).get("embeds"))


@pytest.mark.parametrize("sim_config", [SimulatorConfig(task_seconds=1.0)])
@pytest.mark.parametrize("how", ["card refused", "card deleted"])
async def test_an_ending_without_a_card_is_told_by_dm_once(world: World, how: str) -> None:
    if how == "card refused":
        world.fake.fail(UPLOAD, 403, when=card_post)
    interaction = await world.slash(
        "video animate", options={"prompt": "a forbidden dance"}, attachments={"image": image()}
    )
    [job] = await world.jobs()
    if how == "card refused":
        assert job.card_message_id is None and job.card_state == "none", interaction.texts
        assert "I will tell you by direct message" in interaction.texts[-1]
    else:
        card_of(world, job).deleted = True
    done = await finished(world, job, JobState.FAILED)
    await world.fake.wait_until(lambda: bool(world.fake.dms(world.member)), 5, "a DM")

    [dm] = world.fake.dms(world.member)
    assert f"job #{job.id} ended: Failed" in dm.content
    assert done.failure_reason and done.failure_reason in dm.content
    assert f"The {job.price} credits were returned to you." in dm.content
    assert dm.nonce == f"vidu-end-{job.id}" and dm.pinged_user_ids == []

    # Told again, past Discord's nonce window: by the running bot, and by a fresh one (a
    # restart, which knows only the DM's history). Not sent twice.
    world.fake.advance(3600)
    assert world.bot.poller is not None
    await world.bot.poller.delivery.job_changed(done)
    await build_delivery(world.bot, world.app).job_changed(done)
    assert [m.id for m in world.fake.dms(world.member)] == [dm.id]
    balance = await world.core.moderation.balance(world.guild.id, world.member.id)
    assert balance.held == 0 and balance.used == 0


@pytest.mark.parametrize("sim_config", [slow()])
@pytest.mark.parametrize("settings_overrides", [{"job_timeout_minutes": 0.01}])
async def test_job_without_an_answer_expires(world: World) -> None:
    job = await animate(world)
    done = await finished(world, job, JobState.EXPIRED)

    card = await card_shows(world, job, "Timed out")
    text = embed_text(card.embeds[0])
    assert "gave no result" in text and "credits were returned" in text
    assert done.failure_reason and "returned" in done.failure_reason
    balance = await world.core.moderation.balance(world.guild.id, world.member.id)
    assert balance.held == 0 and balance.used == 0
    assert await ledger_kinds(world, job) == ["hold", "release"]
    assert posts_of(world, job) == []


@pytest.mark.parametrize("sim_config", [slow()])
async def test_one_failing_job_does_not_stop_the_others(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lifecycle, "NOT_FOUND_SPACING", 0.1)  # "not found" three times, quickly
    lost = await animate(world, "first")
    fine = await animate(world, "second")
    world.sim.forget_task(lost.task_id or "")  # the service answers TASK_NOT_FOUND from now on
    world.sim.finish_task(fine.task_id or "")

    failed = await finished(world, lost, JobState.FAILED)
    delivered = await finished(world, fine)
    assert failed.failure_reason
    await card_shows(world, lost, "credits were returned")
    [video] = posts_of(world, fine)
    assert delivered.delivered_message_id == video.id and posts_of(world, failed) == []
    balance = await world.core.moderation.balance(world.guild.id, world.member.id)
    assert balance.used == fine.price and balance.held == 0
    assert world.bot.poller is not None and world.bot._poller_task is not None
    assert not world.bot._poller_task.done()


@pytest.mark.parametrize(
    "settings_overrides",
    [{"delivery_retry_seconds": Settings.model_fields["delivery_retry_seconds"].default}],
)
async def test_one_discord_503_on_the_upload_costs_about_a_second(world: World) -> None:
    # With the operator's default settings: the first retries are quick (1, 2, 4 s…).
    world.fake.fail(UPLOAD, 503, when=has_files)
    job = await animate(world)
    done = await finished(world, job, timeout=10)
    first, second = upload_requests(world)
    assert (first.status, second.status) == (503, 200)
    assert 0.9 <= second.at - first.at <= 2.0
    assert done.delivered_message_id is not None


@pytest.mark.parametrize(
    "settings_overrides",
    [{"delivery_retry_seconds": Settings.model_fields["delivery_retry_seconds"].default}],
)
async def test_a_retry_after_from_discord_is_honoured(world: World) -> None:
    world.fake.fail(UPLOAD, 503, when=has_files, retry_after=3)
    job = await animate(world)
    await finished(world, job, timeout=10)
    first, second = upload_requests(world)
    assert second.at - first.at >= 2.9  # not the 1 s the backoff alone would wait


@pytest.mark.parametrize("sim_config", [SimulatorConfig(task_seconds=1.0)])
async def test_a_brief_task_not_found_does_not_fail_a_paid_video(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A replica of the service that lags behind the one that took the task says "not
    # found" for a moment; the video is made all the same and must reach the member.
    monkeypatch.setattr(lifecycle, "NOT_FOUND_SPACING", 0.2)
    world.sim.task_not_found_next(times=2)
    job = await animate(world)
    done = await finished(world, job, timeout=15)
    assert done.state is JobState.DELIVERED
    reads = world.sim.result_reads
    assert len(reads) >= 3 and posts_of(world, done)
    balance = await world.core.moderation.balance(world.guild.id, world.member.id)
    assert balance.used == job.price and balance.held == 0


@pytest.mark.parametrize("sim_config", [SimulatorConfig(task_seconds=3.0, eta_mode="none")])
async def test_between_reads_the_bar_moves_with_what_the_bot_learned(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service says nothing of progress, and the bot reads rarely before the end it
    learned such jobs reach (about 3 s): the card's bar still moves, drawn from that."""
    monkeypatch.setattr(delivery_module, "MOVING_EDIT_SECONDS", 0.3)
    bucket = bucket_of("vidu-q3-pro-i2v", "720p", False, 5)
    async with world.app.db.transaction() as store:
        for seconds in (2.8, 2.9, 3.0, 3.1, 3.2):
            await store.learn_duration(bucket, seconds, KEEP, utcnow())
    job = await animate(world)
    assert job.bucket == bucket
    await finished(world, job)
    card = await card_shows(world, job, "Done")
    under_way = ("Queued", "Rendering")
    rendering = [embed_text(v) for v in card_versions(card) if v["title"].endswith(under_way)]
    percents = [int(p) for text in rendering for p in re.findall(r"(\d+)%", text)]
    assert len(set(percents)) >= 3 and percents == sorted(percents), rendering
    assert any("likely ready <t:" in text for text in rendering), rendering
    reads = [r for r in world.sim.result_reads if r.query.get("task_id") == job.task_id]
    assert len(reads) < len(rendering) + 3  # the bar moved without a read for each step
