"""Prometheus metrics: every metric the bot has, defined here, and the few calls that count.

Metrics belong to an OS process (that is what Prometheus scrapes), so the calls are plain
functions of this module: a call site is one line and needs nothing handed to it. They
count into the `Metrics` installed for this process (the composition root installs one
named after `PROCESS_NAME`; until then a default one named `bot` counts, so a library
user or a unit test never has to set anything up). Every series carries a `process`
label with that name, so several processes scraped into one Prometheus stay apart.

    metrics.submission("accepted")        # bot/api/client.py
    metrics.delivery("retry")             # the poller
    metrics.poll_to_post(12.5)            # the poller, when a video is posted

This module imports no `discord` and nothing of the bot: anything may call it. The
`/metrics` endpoint that serves it is `bot.metrics_endpoint`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Literal, get_args

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# No `*_created` series beside every counter and histogram: they double the page, and a
# process's start time is what they would say.
disable_created_metrics()  # type: ignore[no-untyped-call]

SubmissionOutcome = Literal["accepted", "rejected", "unknown"]
ReadOutcome = Literal["ok", "not_found", "error"]
RateBudget = Literal["submissions", "reads"]
DeliveryOutcome = Literal["delivered", "retry", "undeliverable"]

# From "posted at once" to "posted after a day of Discord trouble" (the poller's give-up).
POLL_TO_POST_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 86400.0)
# A scrape waits at most this long for the job counts; past it, they are left out.
JOB_COUNT_TIMEOUT_SECONDS = 5.0

JobCounter = Callable[[], Awaitable[Mapping[str, int]]]

# name: help, as listed in the README ("Running more than one process").
NAMES = {
    "vidu_jobs": "Jobs in the database by state, counted when scraped (the same for every "
    "process sharing the database)",
    "vidu_api_submissions_total": "Video submissions by outcome: accepted (a task id came "
    "back), rejected (no task was made: refused, or the service could not be reached), "
    "unknown (the task may exist)",
    "vidu_api_result_reads_total": "Task-result reads by outcome (after the client's own "
    "retries): ok, not_found, error",
    "vidu_api_rate_limited_total": "HTTP 429 answers from the video API by budget "
    "(submissions, reads)",
    "vidu_deliveries_total": "Delivery attempts of finished videos by outcome: delivered, "
    "retry (failed, tried again later), undeliverable",
    "vidu_poll_to_post_seconds": "Seconds from a video being found made to its post in Discord",
    "vidu_leases_held": "Job leases this process holds",
}


class _JobsByState(Collector):
    """`vidu_jobs{state=…}` from the counts read just before the scrape (see `refresh`)."""

    def __init__(self, process: str) -> None:
        self.process = process
        self.counts: Mapping[str, int] | None = None  # None: not counted (yet, or failed)

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        for state, count in sorted((self.counts or {}).items()):
            family.add_metric([self.process, state], count)
        return [family]

    def _family(self) -> GaugeMetricFamily:
        name = "vidu_jobs"
        return GaugeMetricFamily(name, NAMES[name], labels=["process", "state"])


class Metrics:
    """One process's metrics, in a registry of their own (not prometheus_client's global
    one, so tests and several bots in one interpreter never add into each other)."""

    def __init__(self, process: str) -> None:
        self.process = process
        self.registry = CollectorRegistry()
        r = self.registry

        def counter(name: str, label: str) -> Counter:
            # prometheus_client appends `_total` to a counter's name itself.
            return Counter(name.removesuffix("_total"), NAMES[name], ["process", label], registry=r)

        self.submissions = counter("vidu_api_submissions_total", "outcome")
        self.result_reads = counter("vidu_api_result_reads_total", "outcome")
        self.rate_limited = counter("vidu_api_rate_limited_total", "budget")
        self.deliveries = counter("vidu_deliveries_total", "outcome")
        self.poll_to_post = Histogram(
            "vidu_poll_to_post_seconds",
            NAMES["vidu_poll_to_post_seconds"],
            ["process"],
            buckets=POLL_TO_POST_BUCKETS,
            registry=r,
        )
        # No value until the leases report one: an invented 0 would read as "holds none".
        self.leases = Gauge("vidu_leases_held", NAMES["vidu_leases_held"], ["process"], registry=r)
        self.jobs = _JobsByState(process)
        r.register(self.jobs)
        self._count_jobs: JobCounter | None = None
        # Every outcome is a series from the start, at 0: a rate() over a series that
        # appears only with its first increase misses that increase.
        for metric, values in (
            (self.submissions, get_args(SubmissionOutcome)),
            (self.result_reads, get_args(ReadOutcome)),
            (self.rate_limited, get_args(RateBudget)),
            (self.deliveries, get_args(DeliveryOutcome)),
        ):
            for value in values:
                metric.labels(process, value)
        self.poll_to_post.labels(process)

    def count_jobs_with(self, count: JobCounter) -> None:
        """How to count jobs by state (the composition root passes a database query)."""
        self._count_jobs = count

    async def refresh(self) -> None:
        """Count the jobs by state for the scrape about to be rendered. A count that fails
        or takes too long leaves `vidu_jobs` out of this scrape; the others still answer."""
        if self._count_jobs is None:
            return
        try:
            async with asyncio.timeout(JOB_COUNT_TIMEOUT_SECONDS):
                self.jobs.counts = dict(await self._count_jobs())
        except Exception:
            self.jobs.counts = None
            log.warning("metrics: could not count the jobs by state", exc_info=True)

    def render(self) -> bytes:
        """The Prometheus text format of every metric (call `refresh` first)."""
        return generate_latest(self.registry)

    def value(self, name: str, **labels: str) -> float | None:
        """One sample's value (None: no such sample), for tests and checks."""
        return self.registry.get_sample_value(name, {"process": self.process, **labels})


_current = Metrics("bot")


def current() -> Metrics:
    """The metrics this process counts into now."""
    return _current


@contextlib.contextmanager
def installed(metrics: Metrics) -> Iterator[Metrics]:
    """Count into `metrics` until the block ends (then into what counted before)."""
    global _current
    previous, _current = _current, metrics
    try:
        yield metrics
    finally:
        _current = previous


# --- what the rest of the code calls -------------------------------------------------------


def submission(outcome: SubmissionOutcome) -> None:
    """A video submission ended: a task id came back, none was made, or it may exist."""
    _current.submissions.labels(_current.process, outcome).inc()


def result_read(outcome: ReadOutcome) -> None:
    """A task-result read ended (after the client's own retries)."""
    _current.result_reads.labels(_current.process, outcome).inc()


def rate_limited(budget: RateBudget) -> None:
    """The video API answered 429 to a request of this budget."""
    _current.rate_limited.labels(_current.process, budget).inc()


def delivery(outcome: DeliveryOutcome) -> None:
    """A delivery attempt of a finished video ended so."""
    _current.deliveries.labels(_current.process, outcome).inc()


def poll_to_post(seconds: float) -> None:
    """A video was posted this long after it was found made."""
    _current.poll_to_post.labels(_current.process).observe(max(seconds, 0.0))


def leases_held(count: int) -> None:
    """How many job leases this process holds now."""
    _current.leases.labels(_current.process).set(count)
