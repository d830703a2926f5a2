"""A loopback simulator of the Vidu endpoints of the Novita AI API.

It speaks the documented shapes (both submission endpoints, the Task Result API, error
bodies, signed video URLs with a TTL) and can be told to misbehave the ways the real
service may: 429 with Retry-After, 5xx, slow answers, bodies that are not JSON, tasks that
fail, unknown tasks, a submission accepted whose answer never arrives. The bot runs on it
with `NOVITA_SIMULATE=1`; tests inspect every request it received.

    async with Simulator(SimulatorConfig(task_seconds=0)) as sim:
        api = VideoAPI(sim.base_url, sim.api_key)

`python -m bot.api.simulator` runs it standalone and prints its base URL and key.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import hashlib
import hmac
import json
import logging
import math
import secrets
import struct
import time
import uuid
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

from aiohttp import web
from pydantic import ValidationError

from bot.api.endpoints import endpoint_at
from bot.api.models import TaskStatus, describe_validation_error

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

Route = Literal["submit", "result", "video", "any"]
FaultKind = Literal["status", "malformed", "delay", "hang_after_accept", "disconnect"]

RESULT_PATH = "/v3/async/task-result"
MEDIA_PREFIX = "/sim-media/"
DEFAULT_FAILURE_REASON = "The prompt did not pass content moderation."
HTML_ERROR_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body>bad gateway</body></html>"
)


@cache
def sample_mp4() -> bytes:
    """A real, playable one-second 64×64 H.264 MP4 (1.5 kB) shipped with the package."""
    return resources.files("bot.api").joinpath("assets/sample.mp4").read_bytes()


def video_of_size(size: int | None) -> bytes:
    """The sample MP4, padded with a trailing `free` box (players skip it) to `size` bytes."""
    video = sample_mp4()
    padding = (size or 0) - len(video)
    if padding < 8:  # a box needs 8 bytes of header; smaller sizes get the bare sample
        return video
    return video + struct.pack(">I4s", padding, b"free") + bytes(padding - 8)


@dataclass
class SimulatorConfig:
    """Behaviour of the simulator; tests change these fields while it runs."""

    api_key: str = field(default_factory=lambda: "sk-sim-" + secrets.token_hex(12))
    task_seconds: float = 2.0  # QUEUED → PROCESSING → SUCCEED takes this long (0: at once)
    queued_fraction: float = 0.2  # the first part of that time the task is QUEUED
    video_ttl: int | str = "3600"  # sent as given: the docs show strings, some ints, "0"
    video_bytes: int | None = None  # pad the MP4 to this size (download-cap tests)
    chunked_video: bool = False  # send the video without Content-Length
    latency: float = 0.0  # every answer waits this long first
    fail_words: tuple[str, ...] = ("forbidden",)  # in a prompt: the task FAILS (moderation)
    reject_words: tuple[str, ...] = ("illegal",)  # in a prompt: 400 ILLEGAL_PROMPT at submit
    failure_reason: str = DEFAULT_FAILURE_REASON
    progress_fields: bool = True  # send eta and progress_percent (both are optional)
    unknown_fields: bool = True  # add fields the docs do not show, as the real service may
    rate_limit_per_minute: int | None = None  # answer 429 past this many API calls a minute
    rate_limit_retry_after: int = 5
    hang_seconds: float = 600.0  # how long a hung answer waits (the simulator's close ends it)


@dataclass
class Fault:
    """One injected misbehaviour, used by the next `times` requests of `route`."""

    route: Route
    kind: FaultKind
    status: int = 500
    reason: str = "SERVICE_NOT_AVAILABLE"
    message: str = "simulated failure"
    retry_after: float | str | None = None
    body: bytes | None = None
    content_type: str = "application/json"
    seconds: float = 0.0
    times: int = 1


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    body: bytes
    at: float


@dataclass
class SimTask:
    task_id: str
    model: str
    body: dict[str, Any]
    created: float  # time.monotonic()
    seconds: float
    fail_reason: str | None = None
    seed: int = 0
    created_wall: float = field(default_factory=time.time)
    done_at_wall: float | None = None

    def progress(self, now: float) -> float:
        if self.seconds <= 0:
            return 1.0
        return min((now - self.created) / self.seconds, 1.0)


@dataclass
class SimulatorState:
    config: SimulatorConfig
    requests: list[RecordedRequest] = field(default_factory=list)
    tasks: dict[str, SimTask] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    next_task_failures: list[str] = field(default_factory=list)
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    api_calls: collections.deque[float] = field(default_factory=collections.deque)

    def take_fault(self, route: Route, *, hang: bool = False) -> Fault | None:
        """The next fault for `route`: the hang kind only when `hang` (it acts later)."""
        for fault in self.faults:
            if fault.route in (route, "any") and (fault.kind == "hang_after_accept") == hang:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def sign(self, task_id: str, expires: int) -> str:
        return hmac.new(self.secret, f"{task_id}:{expires}".encode(), hashlib.sha256).hexdigest()[
            :32
        ]

    async def hang(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closing.wait(), seconds)


STATE_KEY = web.AppKey("simulator_state", SimulatorState)


def _error(
    status: int, reason: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {"code": status, "reason": reason, "message": message, "metadata": {}},
        status=status,
        headers=headers,
    )


def _route_of(request: web.Request) -> Route:
    if request.path.startswith(MEDIA_PREFIX):
        return "video"
    if request.path == RESULT_PATH:
        return "result"
    return "submit"


async def _record(request: web.Request, state: SimulatorState) -> None:
    body = await request.read()
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    state.requests.append(
        RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            json=parsed,
            body=body,
            at=time.monotonic(),
        )
    )


async def _apply_fault(
    request: web.Request, state: SimulatorState, fault: Fault
) -> web.StreamResponse | None:
    """The answer a fault gives instead of the normal one, or None to go on normally."""
    if fault.kind == "delay":
        await asyncio.sleep(fault.seconds)
        return None
    if fault.kind == "status":
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        return _error(fault.status, fault.reason, fault.message, headers)
    if fault.kind == "malformed":
        body = HTML_ERROR_PAGE if fault.body is None else fault.body
        return web.Response(status=fault.status, body=body, content_type=fault.content_type)
    if fault.kind == "disconnect":
        # Drop the connection without a word: the client sees it broken mid-request.
        if request.transport is not None:
            request.transport.abort()
        await state.hang(5.0)
        raise asyncio.CancelledError
    return None  # hang_after_accept is handled where tasks are created


@web.middleware
async def _simulate(request: web.Request, handler: Any) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    await _record(request, state)
    config = state.config
    if config.latency:
        await asyncio.sleep(config.latency)
    route = _route_of(request)
    fault = state.take_fault(route)
    if fault is not None:
        answer = await _apply_fault(request, state, fault)
        if answer is not None:
            return answer
    if route != "video":
        header = request.headers.get("Authorization", "")
        if not header.strip():
            return _error(400, "MISSING_API_KEY", "the Authorization header is missing")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(key.strip(), config.api_key):
            return _error(403, "INVALID_API_KEY", "the API key is not valid")
        if config.rate_limit_per_minute is not None:
            now = time.monotonic()
            while state.api_calls and now - state.api_calls[0] >= 60:
                state.api_calls.popleft()
            if len(state.api_calls) >= config.rate_limit_per_minute:
                return _error(
                    429,
                    "RATE_LIMIT_EXCEEDED",
                    "too many requests",
                    {"Retry-After": str(config.rate_limit_retry_after)},
                )
            state.api_calls.append(now)
    response: web.StreamResponse = await handler(request)
    return response


async def _submit(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    config = state.config
    spec = endpoint_at(request.path)
    if spec is None:
        return _error(404, "API_NOT_FOUND", f"no API at {request.path}")
    try:
        data = json.loads(await request.read())
    except ValueError:
        return _error(400, "INVALID_REQUEST_BODY", "the request body is not valid JSON")
    try:
        spec.request_model.model_validate(data)
    except ValidationError as exc:
        return _error(400, "INVALID_REQUEST_BODY", describe_validation_error(exc))
    prompt = str(data.get("prompt", "")).lower()
    if any(word in prompt for word in config.reject_words):
        return _error(400, "ILLEGAL_PROMPT", "the prompt violates the content policy")
    fail_reason = None
    if state.next_task_failures:
        fail_reason = state.next_task_failures.pop(0)
    elif any(word in prompt for word in config.fail_words):
        fail_reason = config.failure_reason
    task = SimTask(
        task_id=str(uuid.uuid4()),
        model=spec.name,
        body=data,
        created=time.monotonic(),
        seconds=config.task_seconds,
        fail_reason=fail_reason,
        seed=data.get("seed") or secrets.randbelow(2**31),
    )
    state.tasks[task.task_id] = task
    log.debug("simulator: task %s for %s", task.task_id, spec.name)
    hang = state.take_fault("submit", hang=True)
    if hang is not None:
        # The task exists (and would be billed), but the answer never comes.
        await state.hang(hang.seconds or config.hang_seconds)
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError
    return web.json_response({"task_id": task.task_id})


def _task_body(request: web.Request, state: SimulatorState, task: SimTask) -> dict[str, Any]:
    config = state.config
    now = time.monotonic()
    fraction = task.progress(now)
    info: dict[str, Any] = {
        "task_id": task.task_id,
        "task_type": task.model.upper().replace("-", "_"),
        "reason": "",
    }
    videos: list[dict[str, Any]] = []
    if fraction >= 1.0:
        if task.done_at_wall is None:
            task.done_at_wall = time.time()
        if task.fail_reason is not None:
            info["status"] = TaskStatus.FAILED.value
            info["reason"] = task.fail_reason
            progress, eta = 100, 0
        else:
            info["status"] = TaskStatus.SUCCEED.value
            progress, eta = 100, 0
            videos.append(_video(request, state, task))
    else:
        queued = fraction < config.queued_fraction
        info["status"] = (TaskStatus.QUEUED if queued else TaskStatus.PROCESSING).value
        progress = 0 if queued else int(fraction * 100)
        eta = math.ceil(task.seconds - (now - task.created))
    if config.progress_fields:
        info["eta"] = eta
        info["progress_percent"] = progress
    body: dict[str, Any] = {
        "task": info,
        "extra": {
            "seed": str(task.seed),
            "debug_info": {
                "submit_time_ms": str(int(task.created_wall * 1000)),
                "execute_time_ms": "0",
                "complete_time_ms": str(int((task.done_at_wall or 0) * 1000)),
            },
        },
        "videos": videos,
        "images": [],
        "audios": [],
    }
    if config.unknown_fields:
        info["queue_position"] = 0
        body["simulator"] = {"note": "fields the documentation does not show are ignored"}
    return body


def _video(request: web.Request, state: SimulatorState, task: SimTask) -> dict[str, Any]:
    ttl = state.config.video_ttl
    seconds = int(ttl) if str(ttl).strip().lstrip("-").isdigit() else 0
    # TTL "0" is taken as "no stated expiry": the link keeps working.
    expires = int((task.done_at_wall or time.time()) + seconds) if seconds > 0 else 0
    url = (
        f"{request.url.origin()}{MEDIA_PREFIX}{task.task_id}.mp4"
        f"?expires={expires}&signature={state.sign(task.task_id, expires)}"
    )
    output: dict[str, Any] = {"video_url": url, "video_url_ttl": ttl, "video_type": "mp4"}
    if state.config.unknown_fields:
        output["cover_url"] = ""
    return output


async def _task_result(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    task_id = request.query.get("task_id", "")
    if not task_id:
        return _error(400, "INVALID_REQUEST_BODY", "task_id is required")
    task = state.tasks.get(task_id)
    if task is None:
        return _error(404, "TASK_NOT_FOUND", f"task {task_id} not found")
    return web.json_response(_task_body(request, state, task))


async def _media(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    task_id = request.match_info["task_id"]
    try:
        expires = int(request.query.get("expires", ""))
    except ValueError:
        expires = -1
    signature = request.query.get("signature", "")
    task = state.tasks.get(task_id)
    valid = (
        task is not None
        and expires >= 0
        and hmac.compare_digest(signature, state.sign(task_id, expires))
    )
    if not valid or (expires and time.time() > expires):
        # What a storage bucket says about a bad or expired signed URL.
        return web.Response(
            status=403,
            body=b"<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>",
            content_type="application/xml",
        )
    video = video_of_size(state.config.video_bytes)
    if not state.config.chunked_video:
        return web.Response(body=video, content_type="video/mp4")
    response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for start in range(0, len(video), 64 * 1024):
        await response.write(video[start : start + 64 * 1024])
    await response.write_eof()
    return response


def create_simulator(config: SimulatorConfig | None = None) -> web.Application:
    """The simulator as an aiohttp application (its state is `app[STATE_KEY]`)."""
    app = web.Application(middlewares=[_simulate])
    app[STATE_KEY] = SimulatorState(config or SimulatorConfig())
    app.router.add_get(RESULT_PATH, _task_result)
    app.router.add_post("/v3/async/{model}", _submit)
    app.router.add_get(MEDIA_PREFIX + "{task_id}.mp4", _media)
    return app


class Simulator:
    """The simulator running in-process on 127.0.0.1 and an ephemeral port."""

    def __init__(
        self, config: SimulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.app = create_simulator(config)
        self.state = self.app[STATE_KEY]
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Simulator:
        return cls(SimulatorConfig(task_seconds=settings.simulate_seconds))

    # --- lifetime ----------------------------------------------------------------------

    async def start(self) -> None:
        # handler_cancellation: a client that gives up ends a hung answer at once.
        self._runner = web.AppRunner(
            self.app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        log.info("video API simulator at %s", self.base_url)

    async def close(self) -> None:
        self.state.closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- inspection --------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_key(self) -> str:
        return self.config.api_key

    @property
    def config(self) -> SimulatorConfig:
        return self.state.config

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.state.requests

    @property
    def tasks(self) -> dict[str, SimTask]:
        return self.state.tasks

    @property
    def faults(self) -> list[Fault]:
        return self.state.faults

    def requests_to(self, method: str, path_prefix: str = "/") -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    @property
    def submissions(self) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if r.method == "POST" and r.path.startswith("/v3/async/") and r.path != RESULT_PATH
        ]

    @property
    def result_reads(self) -> list[RecordedRequest]:
        return self.requests_to("GET", RESULT_PATH)

    # --- fault knobs -------------------------------------------------------------------

    def inject(self, fault: Fault) -> Fault:
        self.state.faults.append(fault)
        return fault

    def fail_next(
        self,
        route: Route = "result",
        *,
        status: int = 500,
        reason: str = "SERVICE_NOT_AVAILABLE",
        message: str = "simulated failure",
        times: int = 1,
        retry_after: float | str | None = None,
    ) -> Fault:
        """Answer the next `times` requests of `route` with an error body."""
        return self.inject(
            Fault(
                route,
                "status",
                status=status,
                reason=reason,
                message=message,
                times=times,
                retry_after=retry_after,
            )
        )

    def rate_limit_next(
        self, route: Route = "result", *, retry_after: float | str | None = 1, times: int = 1
    ) -> Fault:
        return self.fail_next(
            route,
            status=429,
            reason="RATE_LIMIT_EXCEEDED",
            message="too many requests",
            times=times,
            retry_after=retry_after,
        )

    def task_not_found_next(self, *, times: int = 1) -> Fault:
        return self.fail_next(
            "result", status=404, reason="TASK_NOT_FOUND", message="task not found", times=times
        )

    def malformed_next(
        self,
        route: Route = "result",
        *,
        body: bytes | None = None,
        status: int = 200,
        content_type: str = "text/html",
        times: int = 1,
    ) -> Fault:
        """Answer with a body that is not the documented JSON (HTML by default)."""
        return self.inject(
            Fault(
                route, "malformed", status=status, body=body, content_type=content_type, times=times
            )
        )

    def delay_next(self, route: Route = "result", *, seconds: float, times: int = 1) -> Fault:
        """Answer normally, but only after `seconds`."""
        return self.inject(Fault(route, "delay", seconds=seconds, times=times))

    def hang_next_submission(self, *, seconds: float = 0.0) -> Fault:
        """Create the next submitted task, then never answer (until `seconds` or close)."""
        return self.inject(Fault("submit", "hang_after_accept", seconds=seconds))

    def disconnect_next(self, route: Route = "submit", *, times: int = 1) -> Fault:
        """Drop the connection of the next request without answering (no task created)."""
        return self.inject(Fault(route, "disconnect", times=times))

    def fail_next_task(self, reason: str = DEFAULT_FAILURE_REASON) -> None:
        """The next task created will end FAILED with `reason`."""
        self.state.next_task_failures.append(reason)

    def fail_task(self, task_id: str, reason: str = DEFAULT_FAILURE_REASON) -> None:
        self.state.tasks[task_id].fail_reason = reason

    def finish_task(self, task_id: str) -> None:
        """Make a task reach its end now."""
        self.state.tasks[task_id].seconds = 0

    def forget_task(self, task_id: str) -> None:
        """From now on the service answers TASK_NOT_FOUND for this task."""
        self.state.tasks.pop(task_id, None)


async def _serve(host: str, port: int, config: SimulatorConfig) -> None:
    async with Simulator(config, host=host, port=port) as sim:
        print(f"NOVITA_BASE_URL={sim.base_url}")
        print(f"NOVITA_API_KEY={sim.api_key}")
        print("Simulating the Novita Vidu API; Ctrl-C stops it.", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bot.api.simulator",
        description="Run the loopback simulator of the Novita Vidu video API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--task-seconds", type=float, default=20.0)
    parser.add_argument("--api-key", default=None, help="default: a random key")
    args = parser.parse_args(argv)
    config = SimulatorConfig(task_seconds=args.task_seconds)
    if args.api_key:
        config.api_key = args.api_key
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, config))


if __name__ == "__main__":
    main()
