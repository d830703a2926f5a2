"""Fixtures of the drills: a `Cluster` (fake Discord + simulator + bot processes) that kills
every process it started whatever happens, and the bots' log tails on a failing test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.simulator import Simulator, SimulatorConfig
from storage import Database
from storage.postgres import PostgresDatabase
from tests.backends import PgSchema, postgres_url
from tests.drills.checks import DRILL_REPORTS, Report
from tests.drills.harness import Cluster
from tests.fakediscord import FakeDiscord


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(task_seconds=0.5)


@pytest.fixture
def shard_count() -> int:
    """The fake Discord's shards (a drill with one bot process per shard overrides it)."""
    return 1


def keep_reports(cluster: Cluster, request: pytest.FixtureRequest) -> None:
    """The last report of this test goes into the terminal summary."""

    def keep(report: Report) -> None:
        request.config.stash.setdefault(DRILL_REPORTS, {})[request.node.name] = report

    cluster.on_report = keep


@pytest.fixture
async def cluster(
    tmp_path: Path, sim_config: SimulatorConfig, shard_count: int, request: pytest.FixtureRequest
) -> AsyncIterator[Cluster]:
    # Nothing in this process runs discord.py: the fake need not patch it.
    fake_discord = FakeDiscord(patch_discord=False, shard_count=shard_count)
    async with fake_discord as fake, Simulator(sim_config) as sim:
        running = Cluster(fake, sim, tmp_path)
        keep_reports(running, request)
        try:
            yield running
        finally:
            await running.close()


@pytest.fixture
async def pg_cluster(
    tmp_path: Path, sim_config: SimulatorConfig, shard_count: int, request: pytest.FixtureRequest
) -> AsyncIterator[Cluster]:
    """A cluster whose bots share a PostgreSQL schema of their own (DATABASE_URL)."""
    server = await postgres_url()
    async with (
        PgSchema.create(server) as schema,
        FakeDiscord(patch_discord=False, shard_count=shard_count) as fake,
        Simulator(sim_config) as sim,
    ):

        async def open_database() -> Database:
            return await PostgresDatabase.open(
                server, server_settings=schema.server_settings, min_connections=1
            )

        running = Cluster(
            fake,
            sim,
            tmp_path,
            settings={"DATABASE_URL": schema.url},
            open_database=open_database,
        )
        keep_reports(running, request)
        try:
            yield running
        finally:
            await running.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing drill shows the end of every bot process's stderr, life by life."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call" and report.failed:
        funcargs = getattr(item, "funcargs", {})
        cluster = funcargs.get("cluster") or funcargs.get("pg_cluster")
        if isinstance(cluster, Cluster) and cluster.bots:
            report.sections.append(("bot process logs (tail)", cluster.log_tails(60)))


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """The figures of every drill and soak that ran, passed or not."""
    for name, report in config.stash.get(DRILL_REPORTS, {}).items():
        terminalreporter.write_sep("-", f"drill figures ({name})")
        terminalreporter.write_line(report.describe())
