"""Two real `python -m bot run` processes, one gateway shard each of a two-shard bot, on one
PostgreSQL schema: each answers only its own guild's commands, names itself in every log
line, serves its own /metrics and answers `health` for itself."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.simulator import SimulatorConfig
from storage import JobState
from tests.drills.harness import BotProcess, Cluster, Server
from tests.shared import free_port


@pytest.fixture
def sim_config() -> SimulatorConfig:
    # Nothing finishes while the test looks: jobs stay QUEUED (which process delivers is
    # the leases' business, not this test's).
    return SimulatorConfig(task_seconds=600)


@pytest.fixture
def shard_count() -> int:
    return 2


@pytest.fixture
def cluster(pg_cluster: Cluster) -> Cluster:
    return pg_cluster


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(port: int) -> Samples:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        assert response.status == 200
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def accepted(samples: Samples, process: str) -> float:
    key = (("outcome", "accepted"), ("process", process))
    return samples[("vidu_api_submissions_total", key)]


async def ask_for_a_video(cluster: Cluster, server: Server) -> None:
    interaction = await cluster.request_video(server, server.members[0], "a cat waves")
    assert interaction.delivered
    await interaction.wait_message(timeout=15)
    assert any("held" in text for text in interaction.texts), interaction.texts


async def test_two_processes_each_serve_their_own_shard(cluster: Cluster) -> None:
    servers = [cluster.add_server(f"Shard{k}", 1, shard_id=k) for k in range(2)]
    ports = [free_port(), free_port()]
    bots: list[BotProcess] = []
    for k in range(2):
        bot = cluster.add_bot(f"shard{k}", shards=(k,), METRICS_PORT=str(ports[k]))
        # The default heartbeat: one per process, in the folder they share.
        del bot.env["HEALTH_FILE"]
        bots.append(bot)
    # Started together: they race for the migrations of the empty schema too.
    await asyncio.gather(*(cluster.start(bot) for bot in bots))
    names = ["shard-0", "shard-1"]

    # A command in each guild is answered by the process holding its shard, and only there.
    await ask_for_a_video(cluster, servers[0])
    scraped = [await scrape(port) for port in ports]
    assert [accepted(s, name) for s, name in zip(scraped, names, strict=True)] == [1, 0]
    await ask_for_a_video(cluster, servers[1])
    scraped = [await scrape(port) for port in ports]
    assert [accepted(s, name) for s, name in zip(scraped, names, strict=True)] == [1, 1]
    assert cluster.fake.undelivered_interactions == []
    jobs = await cluster.jobs()
    assert sorted(job.guild_id for job in jobs) == sorted(s.guild.id for s in servers)
    assert all(job.state is JobState.QUEUED for job in jobs)

    # Every series of a process carries its name; the jobs are the shared database's.
    for samples, name in zip(scraped, names, strict=True):
        assert {dict(labels)["process"] for _metric, labels in samples} == {name}
        listed = {metric for metric, _labels in samples}
        for metric in (
            "vidu_jobs",
            "vidu_api_submissions_total",
            "vidu_api_result_reads_total",
            "vidu_api_rate_limited_total",
            "vidu_deliveries_total",
            "vidu_poll_to_post_seconds_count",
            "vidu_leases_held",  # reported by the process's own poller
        ):
            assert metric in listed, f"{name} does not list {metric}"
        queued = (("process", name), ("state", "QUEUED"))
        assert samples[("vidu_jobs", queued)] == 2

    # Each process answers `health` from its own heartbeat, in the one data folder.
    for bot, name in zip(bots, names, strict=True):
        code, said = await bot.command("health")
        assert code == 0 and said.startswith(f"healthy: {name}:"), said
    assert sorted(p.name for p in cluster.workdir.glob("health-*")) == [
        "health-shard-0",
        "health-shard-1",
    ]
    await bots[1].kill()
    await asyncio.sleep(1.5)
    code, said = await bots[1].command("health", "--max-age", "1")
    assert code == 1 and said.startswith("unhealthy: shard-1: last heartbeat"), said
    code, said = await bots[0].command("health", "--max-age", "1")
    assert code == 0 and said.startswith("healthy: shard-0:"), said

    # Every log line of a process names it (tracebacks aside: none are expected).
    assert await bots[0].terminate() == 0
    for bot, name in zip(bots, names, strict=True):
        lines = bot.log_text().splitlines()
        stamped = [line for line in lines if re.match(r"\d{4}-\d\d-\d\d ", line)]
        assert stamped and len(stamped) == len(lines) - 1, bot.log_tail()  # minus the ----- header
        assert all(f" [{name}] " in line for line in stamped)
        assert [line for line in stamped if f"Shard ID {name[-1]} has connected" in line]
