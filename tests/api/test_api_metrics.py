"""The client counts what happened to each submission and read, and every 429, into the
process's metrics (`bot.metrics`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from api_samples import q3_request

from bot import metrics
from bot.api import (
    MAX_RETRIES,
    BadRequestError,
    MalformedResponseError,
    RateLimitError,
    ServerError,
    SubmissionOutcomeUnknown,
    TaskNotFoundError,
    VideoAPI,
)
from bot.api.endpoints import Q3_PRO_I2V as Q3
from bot.metrics import Metrics
from bot.simulator import Simulator


@pytest.fixture
def counted() -> Iterator[Metrics]:
    with metrics.installed(Metrics("api-test")) as fresh:
        yield fresh


def counts(m: Metrics, name: str, label: str, values: tuple[str, ...]) -> dict[str, float]:
    return {value: m.value(name, **{label: value}) or 0.0 for value in values}


SUBMISSIONS = ("accepted", "rejected", "unknown")
READS = ("ok", "not_found", "error")
BUDGETS = ("submissions", "reads")


async def test_submissions_are_counted_by_outcome(
    sim: Simulator, api: VideoAPI, counted: Metrics
) -> None:
    await api.submit(Q3, q3_request())
    sim.fail_next("submit", status=400, reason="INVALID_IMAGE_FORMAT")
    with pytest.raises(BadRequestError):
        await api.submit(Q3, q3_request())
    sim.fail_next("submit", status=502)
    with pytest.raises(SubmissionOutcomeUnknown):
        await api.submit(Q3, q3_request())
    sim.malformed_next("submit", status=200)
    with pytest.raises(SubmissionOutcomeUnknown):
        await api.submit(Q3, q3_request())
    # Refused with 429 on every try: one submission rejected, four 429s.
    sim.rate_limit_next("submit", retry_after=0, times=MAX_RETRIES + 1)
    with pytest.raises(RateLimitError):
        await api.submit(Q3, q3_request())

    name = "vidu_api_submissions_total"
    assert counts(counted, name, "outcome", SUBMISSIONS) == {
        "accepted": 1,
        "rejected": 2,
        "unknown": 2,
    }
    assert counts(counted, "vidu_api_rate_limited_total", "budget", BUDGETS) == {
        "submissions": MAX_RETRIES + 1,
        "reads": 0,
    }
    assert counts(counted, "vidu_api_result_reads_total", "outcome", READS) == dict.fromkeys(
        READS, 0
    )


async def test_reads_are_counted_by_outcome_once_per_call(
    sim: Simulator, api: VideoAPI, counted: Metrics
) -> None:
    task_id = await api.submit(Q3, q3_request())
    await api.task_result(task_id)
    sim.rate_limit_next("result", retry_after=0)  # retried: one read, ok, one 429
    await api.task_result(task_id)
    sim.fail_next("result", status=503)  # retried: one read, ok
    await api.task_result(task_id)
    with pytest.raises(TaskNotFoundError):
        await api.task_result("no-such-task")
    sim.fail_next("result", status=500, times=MAX_RETRIES + 1)  # given up: one read, error
    with pytest.raises(ServerError):
        await api.task_result(task_id)
    sim.malformed_next("result")
    with pytest.raises(MalformedResponseError):
        await api.task_result(task_id)

    assert counts(counted, "vidu_api_result_reads_total", "outcome", READS) == {
        "ok": 3,
        "not_found": 1,
        "error": 2,
    }
    assert counts(counted, "vidu_api_rate_limited_total", "budget", BUDGETS) == {
        "submissions": 0,
        "reads": 1,
    }
    assert counted.value("vidu_api_submissions_total", outcome="accepted") == 1


async def test_counts_go_to_the_installed_metrics_only(sim: Simulator, api: VideoAPI) -> None:
    first, second = Metrics("first"), Metrics("second")
    with metrics.installed(first):
        await api.submit(Q3, q3_request())
        with metrics.installed(second):
            await api.submit(Q3, q3_request())
            await api.submit(Q3, q3_request())
        await api.submit(Q3, q3_request())
    assert first.value("vidu_api_submissions_total", outcome="accepted") == 2
    assert second.value("vidu_api_submissions_total", outcome="accepted") == 2
    assert metrics.current() is not first and metrics.current() is not second
