"""Crash drills: a real `python -m bot run` killed with SIGKILL at chosen points, restarted
over the same database with the same settings, and checked once things settle.

Each drill reaches its kill point with a fault knob of the fake Discord or the simulator
(a request held, a task that hangs) and waits on an observable fact (a request recorded, a
row written, a message stored) before it kills: never a sleep. Every drill ends with the
shared checker (tests/drills/checks.py), which asserts how the product must behave.
"""

from __future__ import annotations

import pytest

from storage.models import Job, JobState
from tests.drills.checks import Report
from tests.drills.harness import BotProcess, Cluster, Server
from tests.fakediscord.models import RecordedRequest

UPLOAD = "POST /channels/*/messages"
LONG = 600.0  # a task that only ends when the drill calls sim.finish_task


def has_files(request: RecordedRequest) -> bool:
    return bool(request.files)


def is_card(request: RecordedRequest) -> bool:
    return bool((request.json or {}).get("embeds")) and not request.files


@pytest.fixture
def server(cluster: Cluster) -> Server:
    return cluster.add_server("Film Club", ["alice"])


async def restart_and_check(cluster: Cluster, bot: BotProcess) -> Report:
    """The restart after the kill: same database, same settings; then the checker."""
    assert not bot.running
    await cluster.start(bot)
    await cluster.settle(timeout=30)
    return await cluster.check()


def only(jobs: list[Job]) -> Job:
    assert len(jobs) == 1, jobs
    return jobs[0]


async def test_no_crash_baseline(cluster: Cluster, server: Server) -> None:
    """The checker passes on an undisturbed job, and a restart after it changes nothing."""
    bot = await cluster.start()
    await cluster.request_video(server, server.members[0], "baseline: a cat waves")
    await cluster.settle()
    await bot.kill()
    report = await restart_and_check(cluster, bot)
    assert report.ok, report.describe()
    assert report.jobs_by_state == {"DELIVERED": 1} and report.video_posts == 1


async def test_kill_after_the_hold_before_the_api_call(cluster: Cluster, server: Server) -> None:
    # The submission reaches the video API, which holds it before it creates anything.
    cluster.sim.delay_next("submit", seconds=60)
    bot = await cluster.start()
    await cluster.request_video(server, server.members[0], "drill 1: a cat waves")
    await cluster.wait_for(lambda: len(cluster.sim.submissions) == 1, "the submission to arrive")
    job = only(await cluster.wait_jobs(lambda js: len(js) == 1, "the job row"))
    assert job.state is JobState.SUBMITTING and job.task_id is None
    async with cluster.read() as store:
        assert [e.kind for e in await store.job_ledger(job.id)] == ["hold"]
    await bot.kill()

    report = await restart_and_check(cluster, bot)
    assert report.ok, report.describe()
    assert report.jobs_by_state == {"LOST": 1}
    assert cluster.sim.tasks == {}  # the killed request was never carried out
    assert report.submissions == 1 and report.credits_returned == job.price


async def test_kill_after_the_api_accepted_before_the_task_id_was_stored(
    cluster: Cluster, server: Server
) -> None:
    # The task exists (and would be billed), but its id never reaches the bot.
    cluster.sim.hang_next_submission()
    bot = await cluster.start()
    await cluster.request_video(server, server.members[0], "drill 2: a cat waves")
    await cluster.wait_for(lambda: len(cluster.sim.tasks) == 1, "the task to be created")
    job = only(await cluster.jobs())
    assert job.state is JobState.SUBMITTING and job.task_id is None
    await bot.kill()

    report = await restart_and_check(cluster, bot)
    assert report.ok, report.describe()
    assert report.jobs_by_state == {"LOST": 1}
    # Never sent again: the one task made stays the API's (known to no job), not billed twice.
    assert report.submissions == 1 and report.orphan_tasks == 1
    assert report.credits_charged == 0 and report.credits_returned == job.price


@pytest.mark.parametrize("moment", ["queued", "processing", "mid-read", "404 after restart"])
async def test_kill_while_polling(cluster: Cluster, server: Server, moment: str) -> None:
    sim = cluster.sim
    sim.next_task_seconds = [LONG]
    sim.config.queued_fraction = 1.0 if moment in ("queued", "mid-read") else 0.0
    bot = await cluster.start()
    await cluster.request_video(server, server.members[0], f"drill 3 {moment}: a cat waves")
    wanted = JobState.QUEUED if sim.config.queued_fraction else JobState.PROCESSING
    job = await cluster.wait_job(
        lambda j: j.state is wanted and j.task_id is not None, f"the job to be {wanted}"
    )
    if moment == "mid-read":
        # The next read reaches the API and is held there: the bot dies waiting for it.
        sim.delay_next("result", seconds=60)
        reads = len(sim.result_reads)
        await cluster.wait_for(lambda: len(sim.result_reads) > reads, "a read to be held")
    else:
        await cluster.wait_for(lambda: bool(sim.result_reads), "a result read")
    await bot.kill()

    assert job.task_id is not None
    sim.finish_task(job.task_id)  # the video is made while the bot is down
    if moment == "404 after restart":
        # The service stumbles once on a task it has (as it may right after an outage).
        sim.task_not_found_next()
    report = await restart_and_check(cluster, bot)
    assert report.ok, report.describe()
    assert report.jobs_by_state == {"DELIVERED": 1} and report.video_posts == 1


@pytest.mark.parametrize(
    "how",
    [
        "landed, answer held",
        "landed, answer held, past the nonce window",
        "landed, dropped",
        "lost",
    ],
)
async def test_kill_during_the_upload(cluster: Cluster, server: Server, how: str) -> None:
    fake = cluster.fake
    if how == "landed, dropped":
        # The upload lands, the answer never comes; the bot waits long before trying again.
        fault = fake.drop_connection(UPLOAD, accept=True, when=has_files)
        bot = cluster.add_bot(DELIVERY_RETRY_SECONDS="60")
        await cluster.start(bot)
    else:
        fault = fake.hold(UPLOAD, accept=how.startswith("landed"), when=has_files)
        bot = await cluster.start()
    await cluster.request_video(server, server.members[0], f"drill 4 {how}: a cat waves")
    if how == "landed, dropped":
        await cluster.wait_job(
            lambda j: j.state is JobState.SUCCEEDED and j.attempts == 1, "a failed attempt"
        )
    else:
        await cluster.wait_for(lambda: bool(fault.held), "the upload to be held")
    uploads = [m for m in fake.all_messages() if m.files]
    assert len(uploads) == (0 if how == "lost" else 1)
    await bot.kill()

    if "nonce window" in how or how == "landed, dropped":
        # Discord's nonce no longer guards the retry: only the history check can.
        fake.advance(fake.nonce_window + 60)
    report = await restart_and_check(cluster, bot)
    assert report.ok, report.describe()
    assert report.jobs_by_state == {"DELIVERED": 1} and report.video_posts == 1
    if how.startswith("landed"):
        job = only(await cluster.jobs())
        assert job.delivered_message_id == uploads[0].id  # the post that landed, found again


@pytest.mark.parametrize("how", ["answer held, bot killed", "connection dropped, bot lives"])
async def test_card_posted_but_not_recorded(cluster: Cluster, server: Server, how: str) -> None:
    fake, sim = cluster.fake, cluster.sim
    sim.next_task_seconds = [LONG]
    if how == "answer held, bot killed":
        fault = fake.hold(UPLOAD, accept=True, when=is_card)
    else:
        fault = fake.drop_connection(UPLOAD, accept=True, when=is_card)
    bot = await cluster.start()
    await cluster.request_video(server, server.members[0], "drill 5: a cat waves")
    await cluster.wait_for(lambda: fault.hits == 1, "the card post")
    [card] = [m for m in fake.all_messages() if m.embeds and not m.ephemeral]
    job = await cluster.wait_job(lambda j: j.task_id is not None, "the task id to be stored")
    assert job.card_message_id is None
    assert job.task_id is not None
    if how == "answer held, bot killed":
        await cluster.wait_for(lambda: bool(fault.held), "the card's answer to be held")
        await bot.kill()
        sim.finish_task(job.task_id)
        report = await restart_and_check(cluster, bot)
    else:
        sim.finish_task(job.task_id)
        await cluster.settle(timeout=30)
        report = await cluster.check()
    assert report.ok, report.describe()
    assert report.jobs_by_state == {"DELIVERED": 1} and report.video_posts == 1
    assert card.id in [m.id for m in fake.all_messages() if m.embeds]


@pytest.mark.parametrize("ending", ["Done", "Failed"])
async def test_kill_after_the_ending_was_recorded_before_the_card_showed_it(
    cluster: Cluster, server: Server, ending: str
) -> None:
    # The job's last step is stored (and its credits settled); the card's edit to show it
    # reaches Discord and is held there, not yet made, when the bot dies.
    def final_edit(request: RecordedRequest) -> bool:
        embeds = (request.json or {}).get("embeds") or [{}]
        return str(embeds[0].get("title", "")).endswith(f"· {ending}")

    fault = cluster.fake.hold("PATCH /channels/*/messages/*", accept=False, when=final_edit)
    bot = await cluster.start()
    words = "a cat waves" if ending == "Done" else "a forbidden dance"
    await cluster.request_video(server, server.members[0], f"drill 6: {words}")
    await cluster.wait_for(lambda: bool(fault.held), f"the card's edit to {ending!r} to be held")
    job = only(await cluster.jobs())
    assert job.state is (JobState.DELIVERED if ending == "Done" else JobState.FAILED)
    await bot.kill()

    report = await restart_and_check(cluster, bot)
    assert report.ok, report.describe()
    assert report.jobs_by_state == {job.state.value: 1}
