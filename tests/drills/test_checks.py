"""The checker is not vacuous: after a clean run it finds nothing, and it finds each kind of
damage planted in the world the run left behind."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from storage import SYSTEM_ACTOR, NewJob
from storage.models import JobState
from tests.drills.harness import Cluster


async def test_the_checker_finds_what_is_wrong(cluster: Cluster) -> None:
    server = cluster.add_server("Film Club", ["alice"])
    alice = server.members[0]
    await cluster.start()
    await cluster.request_video(server, alice, "checked: a cat waves")
    assert await cluster.settle()
    db = await cluster.database()
    clean = await cluster.check()
    assert clean.ok, clean.describe()
    [job] = await cluster.jobs()
    assert job.state is JobState.DELIVERED and job.card_message_id is not None

    # The video posted a second time; its card left behind; its request sent twice.
    fake = cluster.fake
    fake.add_message(
        server.channel.id, fake.bot_user, f"<@{alice.id}> your video is ready · job #{job.id}"
    )
    card = fake.message(job.card_message_id)
    assert card is not None
    card.embeds[0]["title"] = f"Video job #{job.id} · Rendering"
    [sent] = cluster.sim.submissions
    cluster.sim.requests.append(dataclasses.replace(sent))
    # A hold never settled on the job; a job left running, told nothing.
    now = datetime.now(UTC)
    async with db.transaction() as store:
        await store.add_ledger(
            guild_id=job.guild_id,
            user_id=job.user_id,
            job_id=job.id,
            kind="hold",
            pool="bonus",
            amount=5,
            actor=SYSTEM_ACTOR,
            at=now,
        )
        stuck = await store.insert_job(
            NewJob(
                guild_id=job.guild_id,
                channel_id=job.channel_id,
                user_id=job.user_id,
                model=job.model,
                params={**job.params, "prompt": "stuck"},
                price=0,
            ),
            state=JobState.PROCESSING,
            at=now,
        )

    report = await cluster.check()
    found = "\n".join(report.problems)
    expected = [
        f"job #{job.id} (DELIVERED): its video was posted 2 times",
        f"job #{job.id} (DELIVERED): card {card.id} shows 'Video job #{job.id} · Rendering'",
        f"job #{job.id} (DELIVERED): its request reached the video API 2 times",
        f"job #{job.id} (DELIVERED): holds 35 for a price of 30",
        f"job #{job.id} (DELIVERED): its bonus hold has 0 settlements",
        f"member {alice.id} in guild {server.guild.id}: 5 credits still held",
        f"job #{stuck.id} (PROCESSING): not terminal",
        f"job #{stuck.id} (PROCESSING): no hold in the ledger",
        f"job #{stuck.id} (PROCESSING): no card and no DM",
    ]
    missing = [line for line in expected if line not in found]
    assert missing == [], report.describe()
    assert report.duplicate_posts == 1
