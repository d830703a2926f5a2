"""The simulator's HTTP face: the middleware and the submission and Task Result handlers.

The middleware records every request (and, once answered, its status), applies the
configured latency and the next injected fault, then checks the API key and the server-side rate limit like the real service; the
handlers validate bodies against the endpoints' request models and answer the documented
shapes (`{"task_id"}`, the Task Result body, error bodies).

A submission's `extra` (where a webhook URL travels) is taken out of the body before it is
validated, since the request models do not know it, and kept on the task.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import time
import uuid
from typing import Any, NoReturn

from aiohttp import web
from pydantic import ValidationError

from bot.api.endpoints import endpoint_at
from bot.api.models import describe_validation_error
from bot.simulator.media import MEDIA_PREFIX, media
from bot.simulator.results import task_result_body
from bot.simulator.tasks import (
    STATE_KEY,
    Fault,
    RecordedRequest,
    Route,
    SimTask,
    SimulatorConfig,
    SimulatorState,
)
from bot.simulator.webhooks import WEBHOOKS_KEY, Webhooks

log = logging.getLogger(__name__)

RESULT_PATH = "/v3/async/task-result"
HTML_ERROR_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body>bad gateway</body></html>"
)


def error(
    status: int, reason: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """An error answer in the documented body shape."""
    return web.json_response(
        {"code": status, "reason": reason, "message": message, "metadata": {}},
        status=status,
        headers=headers,
    )


def route_of(request: web.Request) -> Route:
    if request.path.startswith(MEDIA_PREFIX):
        return "video"
    if request.path == RESULT_PATH:
        return "result"
    return "submit"


async def record(request: web.Request, state: SimulatorState) -> RecordedRequest:
    body = await request.read()
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    recorded = RecordedRequest(
        method=request.method,
        path=request.path,
        query=dict(request.query),
        headers=dict(request.headers),
        json=parsed,
        body=body,
        at=time.monotonic(),
    )
    state.requests.append(recorded)
    return recorded


async def apply_fault(
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
        return error(fault.status, fault.reason, fault.message, headers)
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


def check_access(request: web.Request, state: SimulatorState) -> web.Response | None:
    """The API key and the per-minute limit: an error answer, or None to go on."""
    config = state.config
    header = request.headers.get("Authorization", "")
    if not header.strip():
        return error(400, "MISSING_API_KEY", "the Authorization header is missing")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(key.strip(), config.api_key):
        return error(403, "INVALID_API_KEY", "the API key is not valid")
    if config.rate_limit_per_minute is not None:
        now = time.monotonic()
        while state.api_calls and now - state.api_calls[0] >= 60:
            state.api_calls.popleft()
        if len(state.api_calls) >= config.rate_limit_per_minute:
            return error(
                429,
                "RATE_LIMIT_EXCEEDED",
                "too many requests",
                {"Retry-After": str(config.rate_limit_retry_after)},
            )
        state.api_calls.append(now)
    return None


@web.middleware
async def simulate(request: web.Request, handler: Any) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    recorded = await record(request, state)
    response = await answer(request, handler, state)
    recorded.status = response.status  # not reached when the request is dropped or hangs
    return response


async def answer(request: web.Request, handler: Any, state: SimulatorState) -> web.StreamResponse:
    """The answer to a recorded request: after the latency, a fault's, or the handler's."""
    if state.config.latency:
        await asyncio.sleep(state.config.latency)
    route = route_of(request)
    fault = state.take_fault(route) or state.draw_random_fault(route)
    drawn_hang = fault if fault is not None and fault.kind == "hang_after_accept" else None
    if fault is not None and drawn_hang is None:
        answer = await apply_fault(request, state, fault)
        if answer is not None:
            return answer
    if route != "video":
        refusal = check_access(request, state)
        if refusal is not None:
            return refusal
    response: web.StreamResponse = await handler(request)
    if drawn_hang is not None and response.status < 300:
        # A hang drawn at random: the task was created, the answer never comes.
        await hang_up(request, state, drawn_hang.seconds)
    return response


async def hang_up(request: web.Request, state: SimulatorState, seconds: float) -> NoReturn:
    """Keep the client waiting (`seconds`, else the config's hang time), then drop it."""
    await state.hang(seconds or state.config.hang_seconds)
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError


async def submit(request: web.Request) -> web.StreamResponse:
    """`POST /v3/async/<model>`: validate the body, create a task, answer its id."""
    state = request.app[STATE_KEY]
    config = state.config
    spec = endpoint_at(request.path)
    if spec is None:
        return error(404, "API_NOT_FOUND", f"no API at {request.path}")
    try:
        data = json.loads(await request.read())
    except ValueError:
        return error(400, "INVALID_REQUEST_BODY", "the request body is not valid JSON")
    extra = data.pop("extra", None) if isinstance(data, dict) else None
    webhook_url, problem = webhook_of(extra)
    if problem:
        return error(400, "INVALID_REQUEST_BODY", problem)
    try:
        spec.request_model.model_validate(data)
    except ValidationError as exc:
        return error(400, "INVALID_REQUEST_BODY", describe_validation_error(exc))
    prompt = str(data.get("prompt", "")).lower()
    if any(word in prompt for word in config.reject_words):
        return error(400, "ILLEGAL_PROMPT", "the prompt violates the content policy")
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
        seconds=state.duration_for(data),
        fail_reason=fail_reason,
        seed=data.get("seed") or secrets.randbelow(2**31),
        extra=extra,
        webhook_url=webhook_url,
        origin=str(request.url.origin()),
    )
    if webhook_url is not None and state.next_webhook_modes:
        task.webhook_mode = state.next_webhook_modes.pop(0)
    state.tasks[task.task_id] = task
    request.app[WEBHOOKS_KEY].watch(task)
    log.debug("simulator: task %s for %s", task.task_id, spec.name)
    hang = state.take_fault("submit", hang=True)
    if hang is not None:
        # The task exists (and would be billed), but the answer never comes.
        await hang_up(request, state, hang.seconds)
    return web.json_response({"task_id": task.task_id})


def webhook_of(extra: Any) -> tuple[str | None, str]:
    """The webhook URL in a submission's `extra`, and what is wrong with `extra` if anything."""
    if extra is None:
        return None, ""
    if not isinstance(extra, dict):
        return None, "extra must be an object"
    webhook = extra.get("webhook")
    if webhook is None:
        return None, ""
    url = webhook.get("url") if isinstance(webhook, dict) else None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None, "extra.webhook.url must be an http(s) URL"
    return url, ""


async def task_result(request: web.Request) -> web.StreamResponse:
    """`GET /v3/async/task-result?task_id=…`: the task's state now, or TASK_NOT_FOUND."""
    state = request.app[STATE_KEY]
    task_id = request.query.get("task_id", "")
    if not task_id:
        return error(400, "INVALID_REQUEST_BODY", "task_id is required")
    task = state.tasks.get(task_id)
    if task is None:
        return error(404, "TASK_NOT_FOUND", f"task {task_id} not found")
    return web.json_response(task_result_body(state, task, str(request.url.origin())))


def create_simulator(config: SimulatorConfig | None = None) -> web.Application:
    """The simulator as an aiohttp application (its state is `app[STATE_KEY]`)."""
    app = web.Application(middlewares=[simulate])
    state = SimulatorState(config or SimulatorConfig())
    app[STATE_KEY] = state
    app[WEBHOOKS_KEY] = Webhooks(state)
    app.router.add_get(RESULT_PATH, task_result)
    app.router.add_post("/v3/async/{model}", submit)
    app.router.add_get(MEDIA_PREFIX + "{task_id}.mp4", media)
    return app
