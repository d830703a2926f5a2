"""The simulator's state: its configuration, the tasks it runs and the faults it will play.

Nothing here speaks HTTP. `SimulatorState` is shared by the routes (which read and change
it per request) and by `Simulator` (which hands it to tests as knobs and records).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

Route = Literal["submit", "result", "video", "any"]
FaultKind = Literal["status", "malformed", "delay", "hang_after_accept", "disconnect"]

DEFAULT_FAILURE_REASON = "The prompt did not pass content moderation."


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
    """One request the simulator received, refused or not, as it arrived."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    body: bytes
    at: float  # time.monotonic()


@dataclass
class SimTask:
    """One submitted task and the timeline it follows."""

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
        """The true fraction of the task's time that has passed, 0 to 1."""
        if self.seconds <= 0:
            return 1.0
        return min((now - self.created) / self.seconds, 1.0)


@dataclass
class SimulatorState:
    """Everything the simulator knows: config, records, tasks and pending faults."""

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
        """The signature of a video URL of `task_id` valid until `expires` (0: forever)."""
        message = f"{task_id}:{expires}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:32]

    async def hang(self, seconds: float) -> None:
        """Wait `seconds`, or less if the simulator closes first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closing.wait(), seconds)


STATE_KEY = web.AppKey("simulator_state", SimulatorState)
