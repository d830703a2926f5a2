"""Three real `python -m bot run` processes, one gateway shard each, on one PostgreSQL: 60
jobs across three servers, one process killed with SIGKILL while its jobs render. The two
left take its jobs over once its leases run out; then the shared checker: every job ended,
every video posted exactly once, one submission per job, every member's books balance.

Also: a button under a video the dead process posted works when a new process takes its
shard, and the API budget is one for the three (a 429 slows them all).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.simulator import SimulatorConfig
from storage import Job, JobState
from tests.drills.harness import BotProcess, Cluster, Server
from tests.shared import eventually

LEASE = 2.0  # LEASE_SECONDS: how long the dead process's jobs wait for the others
JOBS_PER_SERVER = 20
MEMBERS_PER_SERVER = 10  # two jobs each: the default concurrency


@pytest.fixture
def shard_count() -> int:
    return 3


@pytest.fixture
def sim_config() -> SimulatorConfig:
    # Long enough that every job is still rendering when the kill comes.
    return SimulatorConfig(task_seconds=6.0)


async def start_three(cluster: Cluster) -> list[BotProcess]:
    bots = [cluster.add_bot(f"shard{k}", shards=(k,), LEASE_SECONDS=str(LEASE)) for k in range(3)]
    await asyncio.gather(*(cluster.start(bot) for bot in bots))
    return bots


async def submit_all(cluster: Cluster, servers: list[Server]) -> None:
    async def one(server: Server, n: int) -> None:
        member = server.members[n % len(server.members)]
        interaction = await cluster.request_video(server, member, f"job {n} of {server.guild.name}")
        await interaction.wait_message(timeout=30)
        assert any("held" in text for text in interaction.texts), interaction.texts

    await asyncio.gather(*(one(server, n) for server in servers for n in range(JOBS_PER_SERVER)))


async def test_three_processes_share_the_work_and_survive_a_kill(pg_cluster: Cluster) -> None:
    cluster = pg_cluster
    servers = [cluster.add_server(f"Shard{k}", MEMBERS_PER_SERVER, shard_id=k) for k in range(3)]
    bots = await start_three(cluster)
    await submit_all(cluster, servers)
    jobs = await cluster.wait_jobs(
        lambda js: (
            len(js) == 60 and all(j.task_id is not None and j.card_state == "posted" for j in js)
        ),
        "every job submitted and its card up",
        timeout=30,
    )
    assert all(j.state in (JobState.QUEUED, JobState.PROCESSING) for j in jobs)

    # Every process has taken a share of the reads.
    owners = await lease_owners(cluster)
    assert {owner.split("/")[0] for owner in owners.values()} == {"shard-0", "shard-1", "shard-2"}

    victim = bots[1]
    orphans = {job_id for job_id, owner in owners.items() if owner.startswith("shard-1/")}
    assert orphans
    await victim.kill()
    killed_at = time.monotonic()

    async def taken() -> bool:
        now = await lease_owners(cluster)
        return any(not now.get(job_id, "shard-1/").startswith("shard-1/") for job_id in orphans)

    await eventually(taken, limit=LEASE + 5)
    handed_over = time.monotonic() - killed_at

    def an_orphan_posted(js: list[Job]) -> bool:
        return any(j.id in orphans and j.state is JobState.DELIVERED for j in js)

    await cluster.wait_jobs(an_orphan_posted, "a dead process's video posted", timeout=60)
    taken_over = time.monotonic() - killed_at
    print(
        f"\nfrom the kill: its first job taken over after {handed_over:.2f} s "
        f"(LEASE_SECONDS={LEASE:g}), its first video posted by the others after "
        f"{taken_over:.2f} s"
    )
    assert handed_over < LEASE + 2.0  # a lease runs out LEASE_SECONDS after its last renewal
    assert taken_over < LEASE + 6.0 + 5.0  # its lease, the rest of the rendering, slack

    assert await cluster.settle(timeout=90), cluster.log_tails()
    report = await cluster.check()
    report.extra["after the kill"] = (
        f"its first job taken over after {handed_over:.2f} s (LEASE_SECONDS={LEASE:g}), "
        f"its first video posted by the others after {taken_over:.2f} s"
    )
    assert report.ok, report.describe()
    jobs = await cluster.jobs()
    assert len(jobs) == 60 and all(j.state is JobState.DELIVERED for j in jobs)
    assert len(cluster.sim.submissions) == 60
    # The survivors delivered the dead process's jobs, not only their own.
    delivered_by = await deliverers(cluster, orphans)
    assert delivered_by <= {"shard-0", "shard-2"} and delivered_by

    # A new process takes the dead one's shard: the Re-roll button under a video posted
    # before the kill works there (everything it needs is in the button and the database).
    heir = cluster.add_bot("heir", shards=(1,), LEASE_SECONDS=str(LEASE))
    await cluster.start(heir)
    server = servers[1]
    video, custom_id = next(
        (message, component["custom_id"])
        for message in cluster.fake.messages(server.channel.id)
        for component in message.iter_components()
        if str(component.get("custom_id", "")).startswith("reroll:")
    )
    clicker = server.members[-1]
    click = await cluster.fake.click_button(video, custom_id, clicker)
    await click.wait_message(timeout=15)
    assert any("held" in text for text in click.texts), click.texts
    rerolled = await cluster.wait_job(
        lambda j: j.reroll_of is not None and j.user_id == clicker.id, "the re-roll"
    )
    assert rerolled.guild_id == server.guild.id


async def lease_owners(cluster: Cluster) -> dict[int, str]:
    async with cluster.read() as store:
        rows = await store._all("SELECT id, lease_owner FROM jobs WHERE lease_owner IS NOT NULL")
    return {int(row["id"]): str(row["lease_owner"]) for row in rows}


async def deliverers(cluster: Cluster, job_ids: set[int]) -> set[str]:
    """Which processes logged delivering these jobs."""
    names = set()
    for bot in cluster.bots.values():
        for job_id in job_ids:
            if bot.log_lines(f"job {job_id} ", "-> DELIVERED"):
                names.add(bot.name.replace("shard", "shard-"))
    return names
