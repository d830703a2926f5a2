"""`/metrics`: the Prometheus text format over HTTP, every series labelled with the process,
started and stopped with the bot's resources, jobs counted by state when scraped."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import metrics
from bot.app import open_resources, serving_metrics
from bot.metrics import NAMES, Metrics
from bot.metrics_endpoint import MetricsEndpoint
from bot.settings import ConfigurationError, Settings
from storage import JobState, NewJob
from tests.shared import free_port


async def scrape(url: str) -> tuple[str, dict[str, dict[tuple[tuple[str, str], ...], float]]]:
    """The content type, and every sample as name → sorted labels → value."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        text = await response.text()
        content_type = response.headers["Content-Type"]
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return content_type, samples


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def test_the_endpoint_serves_every_metric_with_the_process_label() -> None:
    counted = Metrics("shard-1")
    calls = 0

    async def count() -> Mapping[str, int]:
        nonlocal calls
        calls += 1
        return {"QUEUED": 2 + calls, "DELIVERED": 7}

    counted.count_jobs_with(count)
    port = free_port()
    with metrics.installed(counted):
        metrics.submission("accepted")
        metrics.delivery("retry")
        metrics.poll_to_post(42.0)
        metrics.leases_held(3)
        async with MetricsEndpoint(counted, "127.0.0.1", port) as endpoint:
            assert endpoint.url == f"http://127.0.0.1:{port}/metrics"
            content_type, first = await scrape(endpoint.url)
            _, second = await scrape(endpoint.url)
    assert content_type.startswith("text/plain; version=")

    process = ("process", "shard-1")
    assert first["vidu_api_submissions_total"][(("outcome", "accepted"), process)] == 1
    assert first["vidu_api_submissions_total"][(("outcome", "unknown"), process)] == 0
    assert first["vidu_deliveries_total"][(("outcome", "retry"), process)] == 1
    assert first["vidu_poll_to_post_seconds_count"][(process,)] == 1
    assert first["vidu_poll_to_post_seconds_sum"][(process,)] == 42.0
    assert first["vidu_leases_held"][(process,)] == 3
    # Counted anew at each scrape.
    assert first["vidu_jobs"][(process, ("state", "QUEUED"))] == 3
    assert second["vidu_jobs"][(process, ("state", "QUEUED"))] == 4
    assert second["vidu_jobs"][(process, ("state", "DELIVERED"))] == 7
    for name in NAMES:
        base = name.removesuffix("_total")
        listed = [s for s in first if s == name or s.startswith(base + "_")]
        assert listed, f"{name} is not served"
    every_label_set = [labels for series in first.values() for labels in series]
    assert all(dict(labels)["process"] == "shard-1" for labels in every_label_set)
    assert not listening(port)  # stopped with its block


async def test_no_lease_value_is_invented_and_a_failed_count_leaves_only_jobs_out() -> None:
    counted = Metrics("bot")

    async def broken() -> Mapping[str, int]:
        raise OSError("the database is gone")

    counted.count_jobs_with(broken)
    port = free_port()
    async with MetricsEndpoint(counted, "127.0.0.1", port) as endpoint:
        _, samples = await scrape(endpoint.url)
    assert "vidu_jobs" not in samples
    assert "vidu_leases_held" not in samples  # nothing has reported leases yet
    assert samples["vidu_api_submissions_total"][(("outcome", "accepted"), ("process", "bot"))] == 0


async def test_a_port_in_use_is_a_configuration_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(
            ConfigurationError, match=f"METRICS_PORT: cannot listen on 127.0.0.1:{port}"
        ):
            async with MetricsEndpoint(Metrics("bot"), "127.0.0.1", port):
                pass


async def test_no_port_no_endpoint(tmp_path: Path) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        discord_token="t",
        novita_simulate=True,
        database_path=tmp_path / "bot.sqlite3",
        download_dir=tmp_path / "downloads",
    )
    async with open_resources(settings) as app, serving_metrics(app) as endpoint:
        assert endpoint is None
        assert metrics.current() is app.metrics and app.metrics.process == "bot"


async def test_the_composition_root_serves_this_process_and_counts_its_jobs(
    tmp_path: Path,
) -> None:
    port = free_port()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        discord_token="t",
        novita_simulate=True,
        database_path=tmp_path / "bot.sqlite3",
        download_dir=tmp_path / "downloads",
        process_name="metrics-test",
        metrics_port=port,
    )
    before = metrics.current()
    async with open_resources(settings) as app, serving_metrics(app) as endpoint:
        assert endpoint is not None and endpoint.url == f"http://127.0.0.1:{port}/metrics"
        assert metrics.current() is app.metrics and app.metrics.process == "metrics-test"
        async with app.db.transaction() as store:
            job = NewJob(guild_id=1, channel_id=2, user_id=3, model="m", params={}, price=5)
            await store.insert_job(job, state=JobState.SUBMITTING, at=datetime.now(UTC))
        _, samples = await scrape(f"http://127.0.0.1:{port}/metrics")
        jobs = samples["vidu_jobs"]
        assert jobs[(("process", "metrics-test"), ("state", "SUBMITTING"))] == 1
        assert jobs[(("process", "metrics-test"), ("state", "DELIVERED"))] == 0
        assert len(jobs) == len(JobState)
    assert metrics.current() is before
    await asyncio.sleep(0)
    assert not listening(port)
