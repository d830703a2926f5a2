"""The async client of the Vidu endpoints of the Novita AI API.

One `VideoAPI` owns one aiohttp session and two budgets (`bot.api.budget`): one for
submissions, one for result reads, so neither waits behind the other. It never starts a
paid video twice: see `submit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import email.utils
import logging
import mimetypes
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import aiohttp
from pydantic import SecretStr, ValidationError

from bot import metrics
from bot.api.budget import Budget, Window, split_budgets
from bot.api.errors import (
    APIConnectionError,
    APITimeoutError,
    DownloadError,
    DownloadTooLargeError,
    MalformedResponseError,
    NotFoundError,
    RateLimitError,
    ServerError,
    SubmissionOutcomeUnknown,
    VideoAPIError,
    error_from_response,
    parse_json_body,
)
from bot.api.models import SubmitResponse, TaskResult, VideoRequest
from bot.retry import backoff

if TYPE_CHECKING:
    from bot.api.endpoints import Endpoint
    from bot.settings import Settings

log = logging.getLogger(__name__)

TASK_RESULT_PATH = "/v3/async/task-result"

# Retry policy (reads and downloads; submissions see `VideoAPI.submit`).
MAX_RETRIES = 3
RETRY_BASE_DELAY = 0.5  # seconds before the first retry; doubles each time
RETRY_MAX_DELAY = 8.0  # cap of one backoff wait
RETRY_JITTER = 0.25  # up to this fraction is taken off a wait, so clients do not march in step
RETRY_AFTER_MAX = 60.0  # a longer Retry-After is not slept through: the caller reschedules

DEFAULT_SUBMITS_PER_MINUTE = 10
DEFAULT_READS_PER_MINUTE = 60

DOWNLOAD_CHUNK_BYTES = 64 * 1024
DOWNLOAD_WRITE_BYTES = 1024 * 1024  # buffered so the event loop hands few writes to threads
BODY_EXCERPT_BYTES = 120
USER_AGENT = "vidu-discord-bot/0.1 (+aiohttp)"


@dataclass(frozen=True)
class Download:
    path: Path
    size: int
    content_type: str


def describe(exc: BaseException) -> str:
    """An aiohttp error for a log line: its class and message, never its repr.

    The repr of some aiohttp errors carries the request headers, `Authorization` included.
    """
    return f"{type(exc).__name__}: {exc}"


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC without saying so
        when = when.replace(tzinfo=datetime.UTC)
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


def _retryable(error: VideoAPIError) -> bool:
    if isinstance(error, RateLimitError):
        return error.retry_after is None or error.retry_after <= RETRY_AFTER_MAX
    return isinstance(error, ServerError | APIConnectionError)


class VideoAPI:
    """Client of the Vidu video endpoints; use as `async with VideoAPI(...) as api:`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | SecretStr | None,
        *,
        submits: Budget | None = None,
        reads: Budget | None = None,
        submit_timeout: float = 90.0,
        request_timeout: float = 30.0,
        max_retries: int = MAX_RETRIES,
        retry_base_delay: float = RETRY_BASE_DELAY,
        retry_max_delay: float = RETRY_MAX_DELAY,
    ) -> None:
        self.base_url = str(base_url).rstrip("/")
        self._api_key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        self.submits = submits or Budget(DEFAULT_SUBMITS_PER_MINUTE, name="submissions")
        self.reads = reads or Budget(DEFAULT_READS_PER_MINUTE, name="result reads")
        self.submit_timeout = submit_timeout
        self.request_timeout = request_timeout
        self.max_retries = max_retries
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        base_url: str | None = None,
        api_key: str | SecretStr | None = None,
        window: Window | None = None,
    ) -> VideoAPI:
        """A client configured from the settings; `base_url`/`api_key` override (simulator);
        `window`: where the budgets count (every process of a deployment shares one).

        With `NOVITA_SIMULATE=1` the simulator's `base_url` is required, so a simulated bot
        can never reach the real, paid API by accident.
        """
        if settings.novita_simulate and base_url is None:
            raise ValueError("NOVITA_SIMULATE=1: pass the running simulator's base_url")
        submits, reads = split_budgets(
            settings.api_submits_per_minute,
            settings.api_reads_per_minute,
            settings.api_requests_per_minute,
        )
        return cls(
            base_url or str(settings.novita_base_url),
            api_key if api_key is not None else settings.novita_api_key,
            submits=Budget(submits, name="submissions", window=window),
            reads=Budget(reads, name="result reads", window=window),
            submit_timeout=settings.submit_timeout_seconds,
            request_timeout=settings.request_timeout_seconds,
        )

    def __repr__(self) -> str:
        return f"VideoAPI(base_url={self.base_url!r}, api_key={'set' if self._api_key else None})"

    # --- session lifetime --------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._ensure_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})
        return self._session

    def _auth_headers(self) -> dict[str, str]:
        # Per request, never a session default: a video URL may live on another host, and
        # the key must not travel there.
        if self._api_key is None:
            return {}
        return {"Authorization": f"Bearer {self._api_key.get_secret_value()}"}

    async def _request(
        self,
        budget: Budget,
        method: str,
        path: str,
        *,
        seconds: float,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> tuple[int, bytes, float | None]:
        """One request within `budget`: status, raw body and Retry-After seconds."""
        await budget.acquire()
        session = self._ensure_session()
        async with session.request(
            method,
            self.base_url + path,
            params=params,
            json=body,
            headers=self._auth_headers(),
            timeout=aiohttp.ClientTimeout(total=seconds),
            allow_redirects=False,
        ) as response:
            raw = await response.read()
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if response.status == 429:
                metrics.rate_limited("submissions" if budget is self.submits else "reads")
                # Every request of that kind waits, not only this call (the limit is per
                # key), whether or not this call is retried.
                await budget.throttled(retry_after)
            log.debug("%s %s → HTTP %s", method, path, response.status)
            return response.status, raw, retry_after

    async def _wait_to_retry(self, what: str, attempt: int, error: VideoAPIError) -> None:
        delay = backoff(
            attempt,
            base=self.retry_base_delay,
            cap=self.retry_max_delay,
            jitter=RETRY_JITTER,
            retry_after=error.retry_after if isinstance(error, RateLimitError) else None,
        )
        log.warning(
            "%s failed (%s); retry %d of %d in %.2f s",
            what,
            error,
            attempt,
            self.max_retries,
            delay,
        )
        await asyncio.sleep(delay)

    # --- the API -----------------------------------------------------------------------

    async def submit(
        self, endpoint: Endpoint, request: VideoRequest, *, webhook_url: str | None = None
    ) -> str:
        """Start a video; returns the task id.

        With `webhook_url` the body carries `"extra": {"webhook": {"url": webhook_url}}`, so
        the service may POST the result there when the task ends. A webhook is only a hint
        (it is not signed, and its support on the Vidu endpoints is unconfirmed): the result
        must still be confirmed with `task_result`.

        Raises `SubmissionOutcomeUnknown` when the task may or may not exist; the caller
        must find out (or give up on it), never simply submit again.
        """
        if not isinstance(request, endpoint.request_model):
            raise TypeError(
                f"{endpoint.name} takes a {endpoint.request_model.__name__}, "
                f"not a {type(request).__name__}"
            )
        if webhook_url is not None and not webhook_url.startswith(("http://", "https://")):
            raise ValueError("webhook_url must be an http(s) URL")
        # Counted here, once, whichever way the submission ends.
        try:
            task_id = await self._submit(endpoint, request, webhook_url)
        except SubmissionOutcomeUnknown:
            metrics.submission("unknown")
            raise
        except VideoAPIError:
            metrics.submission("rejected")
            raise
        metrics.submission("accepted")
        return task_id

    async def _submit(
        self, endpoint: Endpoint, request: VideoRequest, webhook_url: str | None
    ) -> str:
        what = f"POST {endpoint.path}"
        body = request.to_body()
        if webhook_url is not None:
            # Beside the request model's fields, not in them: the models forbid extras.
            body["extra"] = {"webhook": {"url": webhook_url}}
        attempt = 0
        while True:
            error: VideoAPIError
            # A submission is retried only when it certainly created no task: a 429 (the
            # service refused it) or a connection that was never established (nothing was
            # sent). After a timeout, a broken connection, a 5xx or an unreadable 2xx the
            # task may exist and be billed, so the outcome is reported as unknown instead.
            try:
                status, raw, retry_after = await self._request(
                    self.submits, "POST", endpoint.path, body=body, seconds=self.submit_timeout
                )
            except aiohttp.ClientConnectorError as exc:
                error = APIConnectionError(f"{what}: could not connect: {describe(exc)}")
            except TimeoutError as exc:
                cause: VideoAPIError = APITimeoutError(
                    f"{what}: no answer within {self.submit_timeout:g} s"
                )
                raise SubmissionOutcomeUnknown(
                    f"{what}: timed out; the task may exist", cause=cause
                ) from exc
            except aiohttp.ClientError as exc:
                cause = APIConnectionError(f"{what}: connection broke: {describe(exc)}")
                raise SubmissionOutcomeUnknown(
                    f"{what}: connection broke; the task may exist", cause=cause
                ) from exc
            else:
                if 200 <= status < 300:
                    return self._task_id(raw, status, what)
                error = error_from_response(
                    status, raw, method="POST", path=endpoint.path, retry_after=retry_after
                )
                if status >= 500:
                    raise SubmissionOutcomeUnknown(
                        f"{what}: HTTP {status}; the task may exist", cause=error
                    ) from error
                if not isinstance(error, RateLimitError):
                    raise error
            if attempt >= self.max_retries or not _retryable(error):
                raise error
            attempt += 1
            await self._wait_to_retry(what, attempt, error)

    @staticmethod
    def _task_id(raw: bytes, status: int, what: str) -> str:
        data = parse_json_body(raw)
        try:
            task_id = SubmitResponse.model_validate(data).task_id
        except ValidationError:
            cause = MalformedResponseError(
                f"{what}: the answer has no task id",
                status=status,
                body_excerpt=raw[:BODY_EXCERPT_BYTES].decode("utf-8", "replace"),
            )
            raise SubmissionOutcomeUnknown(
                f"{what}: accepted but unreadable; the task may exist", cause=cause
            ) from None
        log.info("%s → task %s", what, task_id)
        return task_id

    async def task_result(self, task_id: str) -> TaskResult:
        """The task's current state; retries 429, 5xx and connection errors (reads are safe)."""
        if not task_id:
            raise ValueError("task_id must not be empty")
        # Counted here, once, whichever way the read ends.
        try:
            result = await self._read_result(task_id)
        except NotFoundError:
            metrics.result_read("not_found")
            raise
        except VideoAPIError:
            metrics.result_read("error")
            raise
        metrics.result_read("ok")
        return result

    async def _read_result(self, task_id: str) -> TaskResult:
        what = f"GET {TASK_RESULT_PATH}?task_id={task_id}"
        attempt = 0
        while True:
            error: VideoAPIError
            try:
                status, raw, retry_after = await self._request(
                    self.reads,
                    "GET",
                    TASK_RESULT_PATH,
                    params={"task_id": task_id},
                    seconds=self.request_timeout,
                )
            except TimeoutError as exc:
                error = APITimeoutError(f"{what}: no answer within {self.request_timeout:g} s")
                error.__cause__ = exc
            except aiohttp.ClientError as exc:
                error = APIConnectionError(f"{what}: {describe(exc)}")
                error.__cause__ = exc
            else:
                if 200 <= status < 300:
                    return self._task_result(raw, status, what)
                error = error_from_response(
                    status, raw, method="GET", path=TASK_RESULT_PATH, retry_after=retry_after
                )
            if attempt >= self.max_retries or not _retryable(error):
                raise error
            attempt += 1
            await self._wait_to_retry(what, attempt, error)

    @staticmethod
    def _task_result(raw: bytes, status: int, what: str) -> TaskResult:
        data = parse_json_body(raw)
        try:
            result = TaskResult.model_validate(data)
        except ValidationError as exc:
            raise MalformedResponseError(
                f"{what}: the answer is not a task result ({exc.error_count()} problems)",
                status=status,
                body_excerpt=raw[:BODY_EXCERPT_BYTES].decode("utf-8", "replace"),
            ) from None
        return result

    async def download(
        self, url: str, *, max_bytes: int, directory: Path | None = None
    ) -> Download:
        """Stream the video at `url` to a temp file of at most `max_bytes` bytes.

        The caller owns (and deletes) the file. Over the cap the download stops at once and
        the partial file is removed. Connection errors and 5xx are retried; the signed URL
        is sent without the API key and outside the rate limit (it is not the API).
        """
        if not url.startswith(("http://", "https://")):
            raise DownloadError("the video URL is not an http(s) URL")
        attempt = 0
        while True:
            error: VideoAPIError
            try:
                return await self._download_once(url, max_bytes, directory)
            except TimeoutError as exc:
                error = APITimeoutError(f"download stalled for {self.request_timeout:g} s")
                error.__cause__ = exc
            except aiohttp.ClientError as exc:
                error = APIConnectionError(f"download failed: {describe(exc)}")
                error.__cause__ = exc
            except DownloadError as exc:
                if exc.status is None or exc.status < 500:
                    raise
                error = exc
            if attempt >= self.max_retries:
                raise error
            attempt += 1
            await self._wait_to_retry("video download", attempt, error)

    async def _download_once(self, url: str, max_bytes: int, directory: Path | None) -> Download:
        session = self._ensure_session()
        # No total timeout: a large video on a slow link may take long; a stall may not.
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.request_timeout, sock_read=self.request_timeout
        )
        async with session.get(url, timeout=timeout) as response:
            if response.status != 200:
                raise DownloadError(
                    f"the video URL answered HTTP {response.status}", status=response.status
                )
            announced = response.content_length
            if announced is not None and announced > max_bytes:
                raise DownloadTooLargeError(max_bytes, 0, announced=announced)
            content_type = response.content_type or "application/octet-stream"
            suffix = mimetypes.guess_extension(content_type) or ""
            fd, name = tempfile.mkstemp(prefix="vidu-", suffix=suffix, dir=directory)
            path = Path(name)
            size = 0
            buffer = bytearray()
            try:
                async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK_BYTES):
                    size += len(chunk)
                    if size > max_bytes:
                        raise DownloadTooLargeError(max_bytes, size)
                    buffer += chunk
                    if len(buffer) >= DOWNLOAD_WRITE_BYTES:
                        await asyncio.to_thread(_write_all, fd, bytes(buffer))
                        buffer.clear()
                if buffer:
                    await asyncio.to_thread(_write_all, fd, bytes(buffer))
            except BaseException:
                os.close(fd)
                with contextlib.suppress(FileNotFoundError):
                    os.remove(name)
                raise
            os.close(fd)
        log.info("downloaded %d bytes (%s) to %s", size, content_type, path)
        return Download(path=path, size=size, content_type=content_type)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
