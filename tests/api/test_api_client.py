"""The client against the loopback simulator: happy paths, every error class, retry rules."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from api_samples import IMAGE, q2_request, q3_request
from pydantic import SecretStr

from bot.api import (
    MAX_RETRIES,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    Budget,
    ContentPolicyError,
    DownloadError,
    DownloadTooLargeError,
    InsufficientBalanceError,
    MalformedResponseError,
    NotFoundError,
    Q3ImageToVideoRequest,
    RateLimitError,
    ServerError,
    SubmissionOutcomeUnknown,
    TaskNotFoundError,
    TaskResult,
    TaskStatus,
    VideoAPI,
    VideoAPIError,
)
from bot.api.client import parse_retry_after
from bot.api.endpoints import Q2_REFERENCE2VIDEO as Q2
from bot.api.endpoints import Q3_PRO_I2V as Q3
from bot.api.endpoints import Q3_TURBO_I2V as Q3_TURBO
from bot.api.endpoints import Endpoint
from bot.simulator import Simulator, SimulatorConfig, sample_mp4
from tests.shared import free_port


async def poll_until_done(api: VideoAPI, task_id: str, *, limit: float = 5.0) -> list[TaskResult]:
    seen: list[TaskResult] = []
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        result = await api.task_result(task_id)
        seen.append(result)
        if result.is_terminal:
            return seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish: {seen[-1] if seen else None}")


def files_in(directory: Path) -> list[Path]:
    return list(directory.iterdir())


# --- end to end ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "build"),
    [
        (Q3, lambda: q3_request(resolution="1080p", seed=7, off_peak=True)),
        (Q3_TURBO, lambda: q3_request().model_copy(update={})),
        (Q2, lambda: q2_request(movement_amplitude="small", bgm=True)),
    ],
    ids=["q3-pro", "q3-turbo", "q2-reference"],
)
async def test_submit_poll_download_end_to_end(
    sim: Simulator, api: VideoAPI, tmp_path: Path, spec: Endpoint, build: Callable[[], object]
) -> None:
    request = build()
    if spec is Q3_TURBO:
        request = spec.request_model.model_validate(
            {**q3_request().to_body(), "audio_type": "sound_effect_only"}
        )
    task_id = await api.submit(spec, request)  # type: ignore[arg-type]

    (post,) = sim.submissions
    assert post.path == spec.path
    assert post.headers["Authorization"] == f"Bearer {sim.api_key}"
    assert post.json == request.to_body()  # type: ignore[attr-defined]
    assert sim.tasks[task_id].model == spec.name

    seen = await poll_until_done(api, task_id)
    statuses = [r.status for r in seen]
    assert statuses[0] in (TaskStatus.QUEUED, TaskStatus.PROCESSING)
    assert TaskStatus.PROCESSING in statuses
    assert statuses[-1] is TaskStatus.SUCCEED
    progress = [r.task.progress_percent for r in seen]
    assert progress == sorted(progress)  # type: ignore[type-var]
    assert all(r.task.eta is not None for r in seen)
    final = seen[-1]
    assert final.video is not None and final.video.video_url_ttl == 3600

    download = await api.download(final.video.video_url, max_bytes=1_000_000, directory=tmp_path)
    assert download.path.parent == tmp_path
    assert download.content_type == "video/mp4"
    assert download.size == len(sample_mp4()) == download.path.stat().st_size
    data = download.path.read_bytes()
    assert data[4:8] == b"ftyp" and b"moov" in data and b"mdat" in data
    # The signed video URL never gets the API key.
    (media,) = sim.requests_to("GET", "/sim-media/")
    assert "Authorization" not in media.headers


async def test_failed_task_reports_the_reason(sim: Simulator, api: VideoAPI) -> None:
    task_id = await api.submit(Q3, q3_request(prompt="something forbidden"))
    final = (await poll_until_done(api, task_id))[-1]
    assert final.failed and "moderation" in final.task.reason and final.video is None

    sim.fail_next_task("no GPUs today")
    other = await api.submit(Q3, q3_request())
    assert (await poll_until_done(api, other))[-1].task.reason == "no GPUs today"


@pytest.mark.parametrize(("ttl", "expected"), [("3600", 3600), (7200, 7200), ("0", 0)])
async def test_both_ttl_forms_and_unknown_fields(
    sim: Simulator, api: VideoAPI, tmp_path: Path, ttl: int | str, expected: int
) -> None:
    sim.config.video_ttl = ttl
    sim.config.task_seconds = 0
    assert sim.config.unknown_fields
    task_id = await api.submit(Q3, q3_request())
    result = await api.task_result(task_id)
    assert result.video is not None and result.video.video_url_ttl == expected
    download = await api.download(result.video.video_url, max_bytes=10_000, directory=tmp_path)
    assert download.size > 0


async def test_missing_eta_and_progress(sim: Simulator, api: VideoAPI) -> None:
    sim.config.progress_fields = False
    task_id = await api.submit(Q3, q3_request())
    result = await api.task_result(task_id)
    assert result.task.eta is None and result.task.progress_percent is None
    assert not result.is_terminal


# --- error classes ---------------------------------------------------------------------


async def test_server_side_validation_is_a_bad_request(sim: Simulator, api: VideoAPI) -> None:
    # Bypass our own validation to see the simulator's: a 400 names the field too.
    unchecked = Q3ImageToVideoRequest.model_construct(images=[IMAGE], duration=99)
    with pytest.raises(BadRequestError) as caught:
        await api.submit(Q3, unchecked)
    error = caught.value
    assert (error.status, error.reason) == (400, "INVALID_REQUEST_BODY")
    assert "duration must be a whole number of seconds from 1 to 16" in error.message
    assert "duration" in error.member_message
    assert (error.method, error.path) == ("POST", Q3.path)
    assert len(sim.submissions) == 1


@pytest.mark.parametrize(
    ("status", "reason", "cls", "words"),
    [
        (400, "INVALID_IMAGE_FORMAT", BadRequestError, "JPG, PNG or WebP"),
        (400, "ILLEGAL_IMAGE_CONTENT", ContentPolicyError, "refused the image"),
        (400, "BILLING_BALANCE_NOT_ENOUGH", InsufficientBalanceError, "operator"),
        (401, "FAILED_TO_AUTH", AuthenticationError, "operator"),
        (403, "FEATURE_NOT_ALLOWED", AuthenticationError, "may not use this model"),
        (404, "API_NOT_FOUND", NotFoundError, "does not offer this model"),
        (409, "SOMETHING_NEW", APIStatusError, "problem"),
    ],
)
async def test_error_bodies_become_typed_errors(
    sim: Simulator,
    api: VideoAPI,
    status: int,
    reason: str,
    cls: type[APIStatusError],
    words: str,
) -> None:
    sim.fail_next("submit", status=status, reason=reason, message="nope")
    with pytest.raises(cls) as caught:
        await api.submit(Q3, q3_request())
    assert type(caught.value) is cls
    assert (caught.value.status, caught.value.reason, caught.value.message) == (
        status,
        reason,
        "nope",
    )
    assert words in caught.value.member_message
    assert len(sim.submissions) == 1  # a refusal is never retried


async def test_illegal_prompt_is_a_content_policy_error(sim: Simulator, api: VideoAPI) -> None:
    with pytest.raises(ContentPolicyError) as caught:
        await api.submit(Q3, q3_request(prompt="something illegal"))
    assert caught.value.member_message == (
        "The video service refused the prompt (content policy). Change the wording and try again."
    )
    assert not sim.tasks


async def test_wrong_or_missing_key(sim: Simulator, make_api: Callable[..., VideoAPI]) -> None:
    async with make_api(api_key=SecretStr("sk-wrong")) as wrong:
        with pytest.raises(AuthenticationError) as caught:
            await wrong.task_result("x")
        assert (caught.value.status, caught.value.reason) == (403, "INVALID_API_KEY")
        assert "sk-wrong" not in str(caught.value) and "sk-wrong" not in repr(wrong)
    async with make_api(api_key=None) as keyless:
        with pytest.raises(AuthenticationError) as caught:
            await keyless.submit(Q3, q3_request())
        assert (caught.value.status, caught.value.reason) == (400, "MISSING_API_KEY")
    assert not sim.tasks


async def test_unknown_endpoint_is_not_found(api: VideoAPI) -> None:
    ghost = Endpoint("vidu-ghost", Q3ImageToVideoRequest)
    with pytest.raises(NotFoundError) as caught:
        await api.submit(ghost, q3_request())
    assert caught.value.reason == "API_NOT_FOUND"


async def test_unknown_task_is_task_not_found(sim: Simulator, api: VideoAPI) -> None:
    with pytest.raises(TaskNotFoundError) as caught:
        await api.task_result("no-such-task")
    assert isinstance(caught.value, NotFoundError)
    assert "no longer knows" in caught.value.member_message
    task_id = await api.submit(Q3, q3_request())
    sim.task_not_found_next()
    with pytest.raises(TaskNotFoundError):
        await api.task_result(task_id)
    assert len(sim.result_reads) == 2  # not retried


async def test_submit_rejects_the_wrong_request_model(api: VideoAPI, sim: Simulator) -> None:
    with pytest.raises(TypeError, match="Q2ReferenceToVideoRequest"):
        await api.submit(Q2, q3_request())
    assert not sim.requests


async def test_malformed_success_bodies(sim: Simulator, api: VideoAPI) -> None:
    task_id = await api.submit(Q3, q3_request())
    sim.malformed_next("result")  # HTML from a proxy with 200
    with pytest.raises(MalformedResponseError) as caught:
        await api.task_result(task_id)
    assert caught.value.status == 200 and "<html>" in caught.value.body_excerpt
    sim.malformed_next("result", body=b'{"task": "not an object"}', content_type="application/json")
    with pytest.raises(MalformedResponseError):
        await api.task_result(task_id)
    sim.malformed_next("result", body=b"", content_type="application/json")
    with pytest.raises(MalformedResponseError) as empty:
        await api.task_result(task_id)
    assert "could not read" in empty.value.member_message
    assert len(sim.result_reads) == 3  # an unreadable answer is not retried


# --- retries of reads ------------------------------------------------------------------


async def test_read_retries_5xx_then_succeeds(sim: Simulator, api: VideoAPI) -> None:
    task_id = await api.submit(Q3, q3_request())
    sim.fail_next("result", status=503, times=2)
    result = await api.task_result(task_id)
    assert result.task.task_id == task_id
    assert len(sim.result_reads) == 3


async def test_read_gives_up_after_max_retries(sim: Simulator, api: VideoAPI) -> None:
    sim.fail_next("result", status=500, reason="GET_RESULT_FAILED", times=10)
    with pytest.raises(ServerError) as caught:
        await api.task_result("any")
    assert caught.value.reason == "GET_RESULT_FAILED"
    assert len(sim.result_reads) == MAX_RETRIES + 1


async def test_proxy_html_on_5xx_is_a_server_error_and_retried(
    sim: Simulator, api: VideoAPI
) -> None:
    task_id = await api.submit(Q3, q3_request())
    sim.malformed_next("result", status=502)
    assert (await api.task_result(task_id)).task.task_id == task_id
    sim.malformed_next("result", status=502, times=MAX_RETRIES + 1)
    with pytest.raises(ServerError) as caught:
        await api.task_result(task_id)
    assert caught.value.status == 502 and caught.value.reason == ""
    assert "not the documented JSON" in caught.value.message
    assert len(sim.result_reads) == 2 + MAX_RETRIES + 1


async def test_read_honours_retry_after(sim: Simulator, api: VideoAPI) -> None:
    task_id = await api.submit(Q3, q3_request())
    sim.rate_limit_next("result", retry_after=1)
    await api.task_result(task_id)
    first, second = sim.result_reads
    assert second.at - first.at >= 0.95  # not the 10 ms backoff the client would use otherwise


def test_retry_after_forms() -> None:
    from email.utils import formatdate

    now = 1_700_000_000.0
    assert parse_retry_after("7", now=now) == 7
    assert parse_retry_after("0.5", now=now) == 0.5
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == 30
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None) is None


async def test_long_retry_after_is_handed_to_the_caller(sim: Simulator, api: VideoAPI) -> None:
    sim.rate_limit_next("result", retry_after=120)
    with pytest.raises(RateLimitError) as caught:
        await api.task_result("any")
    assert caught.value.retry_after == 120
    assert "busy" in caught.value.member_message
    assert len(sim.result_reads) == 1
    # Not retried here, but every other read waits too: the limit is the key's.
    assert await api.reads.available() == 0 and await api.reads.limit() == 3000


async def test_rate_limit_without_retry_after_backs_off_then_gives_up(
    sim: Simulator, api: VideoAPI
) -> None:
    sim.rate_limit_next("result", retry_after=None, times=10)
    with pytest.raises(RateLimitError) as caught:
        await api.task_result("any")
    assert caught.value.retry_after is None
    assert len(sim.result_reads) == MAX_RETRIES + 1


async def test_read_timeouts_are_retried(sim: Simulator, make_api: Callable[..., VideoAPI]) -> None:
    async with make_api(request_timeout=0.2) as api:
        task_id = await api.submit(Q3, q3_request())
        sim.delay_next("result", seconds=1.0)
        assert (await api.task_result(task_id)).task.task_id == task_id
        sim.delay_next("result", seconds=1.0, times=MAX_RETRIES + 1)
        with pytest.raises(APITimeoutError) as caught:
            await api.task_result(task_id)
    assert "in time" in caught.value.member_message
    assert len(sim.result_reads) == 2 + MAX_RETRIES + 1


async def test_read_connection_refused(make_api: Callable[..., VideoAPI]) -> None:
    async with make_api(base_url=f"http://127.0.0.1:{free_port()}") as api:
        with pytest.raises(APIConnectionError) as caught:
            await api.task_result("any")
    assert type(caught.value) is APIConnectionError
    assert "could not reach" in caught.value.member_message


# --- the submission rule ----------------------------------------------------------------


async def test_submit_429_is_retried_honouring_retry_after(sim: Simulator, api: VideoAPI) -> None:
    sim.rate_limit_next("submit", retry_after=1)
    task_id = await api.submit(Q3, q3_request())
    first, second = sim.submissions
    assert second.at - first.at >= 0.95
    assert list(sim.tasks) == [task_id]


async def test_submit_429_gives_up_without_creating_anything(sim: Simulator, api: VideoAPI) -> None:
    sim.rate_limit_next("submit", retry_after=None, times=10)
    with pytest.raises(RateLimitError):
        await api.submit(Q3, q3_request())
    assert len(sim.submissions) == MAX_RETRIES + 1
    assert not sim.tasks


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_submit_5xx_is_never_retried(sim: Simulator, api: VideoAPI, status: int) -> None:
    sim.fail_next("submit", status=status, reason="CREATE_TASK_FAILED")
    with pytest.raises(SubmissionOutcomeUnknown) as caught:
        await api.submit(Q3, q3_request())
    assert isinstance(caught.value.cause, ServerError)
    assert caught.value.cause.status == status
    assert "did not send it again" in caught.value.member_message
    assert len(sim.submissions) == 1


async def test_submit_accepted_but_answer_never_arrives(
    sim: Simulator, make_api: Callable[..., VideoAPI]
) -> None:
    sim.hang_next_submission()
    async with make_api(submit_timeout=0.3) as api:
        with pytest.raises(SubmissionOutcomeUnknown) as caught:
            await api.submit(Q3, q3_request())
    assert isinstance(caught.value.cause, APITimeoutError)
    assert len(sim.submissions) == 1
    assert len(sim.tasks) == 1  # the task exists: retrying would have made (and billed) two


async def test_slow_submission_times_out_once(
    sim: Simulator, make_api: Callable[..., VideoAPI]
) -> None:
    sim.delay_next("submit", seconds=1.0)
    async with make_api(submit_timeout=0.3) as api:
        with pytest.raises(SubmissionOutcomeUnknown):
            await api.submit(Q3, q3_request())
    assert len(sim.submissions) == 1


async def test_dropped_connection_on_submit_is_unknown(sim: Simulator, api: VideoAPI) -> None:
    sim.disconnect_next("submit")
    with pytest.raises(SubmissionOutcomeUnknown) as caught:
        await api.submit(Q3, q3_request())
    assert type(caught.value.cause) is APIConnectionError
    assert len(sim.submissions) == 1


@pytest.mark.parametrize(
    ("status", "body", "cause"),
    [
        (200, None, MalformedResponseError),
        (200, b'{"id": "no task_id here"}', MalformedResponseError),
        (502, None, ServerError),
    ],
)
async def test_unreadable_submission_answer_is_unknown(
    sim: Simulator, api: VideoAPI, status: int, body: bytes | None, cause: type[VideoAPIError]
) -> None:
    sim.malformed_next("submit", status=status, body=body)
    with pytest.raises(SubmissionOutcomeUnknown) as caught:
        await api.submit(Q3, q3_request())
    assert type(caught.value.cause) is cause
    assert len(sim.submissions) == 1


async def test_submit_refused_connection_is_retried_then_raised(
    make_api: Callable[..., VideoAPI],
) -> None:
    async with make_api(base_url=f"http://127.0.0.1:{free_port()}") as api:
        with pytest.raises(APIConnectionError) as caught:
            await api.submit(Q3, q3_request())
    assert type(caught.value) is APIConnectionError  # known: nothing was sent


async def test_submit_refused_then_server_comes_up_creates_one_task() -> None:
    port = free_port()
    simulator = Simulator(SimulatorConfig(api_key="sk-test", task_seconds=0), port=port)
    async with VideoAPI(
        f"http://127.0.0.1:{port}", "sk-test", reads=Budget(6000), retry_base_delay=0.2
    ) as api:
        submitting = asyncio.create_task(api.submit(Q3, q3_request()))
        await asyncio.sleep(0.02)
        async with simulator:
            task_id = await submitting
    assert len(simulator.submissions) == 1
    assert list(simulator.tasks) == [task_id]


# --- download ----------------------------------------------------------------------------


async def finished_video_url(sim: Simulator, api: VideoAPI) -> str:
    sim.config.task_seconds = 0
    result = await api.task_result(await api.submit(Q3, q3_request()))
    assert result.video is not None
    return result.video.video_url


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_download_stops_over_the_cap_and_removes_the_file(
    sim: Simulator, api: VideoAPI, tmp_path: Path, chunked: bool
) -> None:
    sim.config.video_bytes = 600_000
    sim.config.chunked_video = chunked
    url = await finished_video_url(sim, api)
    with pytest.raises(DownloadTooLargeError) as caught:
        await api.download(url, max_bytes=100_000, directory=tmp_path)
    error = caught.value
    assert error.limit == 100_000
    if chunked:
        assert 100_000 < error.received <= 100_000 + 64 * 1024  # stopped at the first chunk over
        assert error.announced is None
    else:
        assert error.announced == 600_000 and error.received == 0
    assert files_in(tmp_path) == []
    assert "too large" in error.member_message


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_download_up_to_the_cap(
    sim: Simulator, api: VideoAPI, tmp_path: Path, chunked: bool
) -> None:
    sim.config.video_bytes = 2_500_000
    sim.config.chunked_video = chunked
    url = await finished_video_url(sim, api)
    download = await api.download(url, max_bytes=2_500_000, directory=tmp_path)
    assert download.size == 2_500_000 == download.path.stat().st_size
    assert download.path.read_bytes().startswith(sample_mp4())
    assert download.path.suffix == ".mp4"


async def test_download_of_a_bad_link_is_not_retried(
    sim: Simulator, api: VideoAPI, tmp_path: Path
) -> None:
    url = await finished_video_url(sim, api)
    with pytest.raises(DownloadError) as caught:
        await api.download(
            url.replace("signature=", "signature=0"), max_bytes=10_000, directory=tmp_path
        )
    assert caught.value.status == 403
    assert "expired" in caught.value.member_message
    assert len(sim.requests_to("GET", "/sim-media/")) == 1
    assert files_in(tmp_path) == []


async def test_download_retries_a_5xx(sim: Simulator, api: VideoAPI, tmp_path: Path) -> None:
    url = await finished_video_url(sim, api)
    sim.fail_next("video", status=503)
    download = await api.download(url, max_bytes=10_000, directory=tmp_path)
    assert download.size == len(sample_mp4())
    assert len(sim.requests_to("GET", "/sim-media/")) == 2


# --- a budget for each kind of request; construction --------------------------------------


async def test_submissions_and_reads_have_budgets_of_their_own(
    sim: Simulator, make_api: Callable[..., VideoAPI]
) -> None:
    submits, reads = Budget(2, period=0.5), Budget(2, period=0.5)
    async with make_api(submits=submits, reads=reads) as api:
        start = time.monotonic()
        first = await api.submit(Q3, q3_request())
        await api.submit(Q3, q3_request())
        # The submission budget is spent; reads still go at once...
        await api.task_result(first)
        await api.task_result(first)
        assert time.monotonic() - start < 0.3
        # ...and a third submission waits for its own window, not for the reads.
        await api.submit(Q3, q3_request())
    assert len(sim.submissions) == 3
    assert sim.submissions[2].at - sim.submissions[0].at >= 0.45


async def test_a_429_slows_only_the_budget_it_came_from(
    sim: Simulator, make_api: Callable[..., VideoAPI]
) -> None:
    submits, reads = Budget(60, period=1.0), Budget(60, period=1.0)
    async with make_api(submits=submits, reads=reads) as api:
        task_id = await api.submit(Q3, q3_request())
        sim.rate_limit_next("result", retry_after=1)
        started = time.monotonic()
        await api.task_result(task_id)  # waits out the Retry-After, then succeeds
        assert time.monotonic() - started >= 0.95
    assert await reads.limit() == 30 and await submits.limit() == 60  # only the reads halved


def test_from_settings_reads_the_knobs() -> None:
    from bot.settings import Settings

    settings = Settings(
        _env_file=None,
        discord_token="x",
        novita_api_key="sk-secret-value",
        api_submits_per_minute=4,
        api_reads_per_minute=20,
        api_requests_per_minute=12,
        submit_timeout_seconds=75,
        request_timeout_seconds=12,
    )
    api = VideoAPI.from_settings(settings)
    assert api.base_url == "https://api.novita.ai"
    # Both budgets scaled down to share the total of 12, in proportion: 2 and 10.
    assert (api.submits.per_minute, api.reads.per_minute) == (2, 10)
    assert (api.submit_timeout, api.request_timeout) == (75, 12)
    assert "sk-secret-value" not in repr(api)
    simulate = settings.model_copy(update={"novita_simulate": True})
    with pytest.raises(ValueError, match="simulator's base_url"):
        VideoAPI.from_settings(simulate)
    simulated = VideoAPI.from_settings(simulate, base_url="http://127.0.0.1:1/", api_key="sim")
    assert simulated.base_url == "http://127.0.0.1:1"


async def test_download_gives_up_on_a_lasting_5xx(
    sim: Simulator, api: VideoAPI, tmp_path: Path
) -> None:
    url = await finished_video_url(sim, api)
    sim.fail_next("video", status=502, times=MAX_RETRIES + 1)
    with pytest.raises(DownloadError) as caught:
        await api.download(url, max_bytes=10_000, directory=tmp_path)
    assert caught.value.status == 502
    assert len(sim.requests_to("GET", "/sim-media/")) == MAX_RETRIES + 1
    assert files_in(tmp_path) == []
