"""The simulator's state: its configuration, the tasks it runs and the faults it will play.

Nothing here speaks HTTP. `SimulatorState` is shared by the routes (which read and change
it per request) and by `Simulator` (which hands it to tests as knobs and records).

A task's timeline: it is submitted at `created` and ends `seconds` later (its true
duration T), QUEUED for the first `queued_fraction` of that time, then PROCESSING, then
SUCCEED or FAILED. T comes from, in this order: `SimulatorState.next_task_seconds` (one
per submission, consumed in order), `SimulatorConfig.duration_of(body)`, and
`SimulatorConfig.task_seconds`.

What a read says about the time left depends on `eta_mode` (the task's own, else the
config's). With `elapsed` the seconds since submission, while the task runs:

- `"accurate"`: eta = ceil(T - elapsed), progress = elapsed / T.
- `"too_long"`: the service believes the task takes 4T: eta = ceil(4T - elapsed),
  progress = elapsed / 4T.
- `"too_short"`: it believes T/4: eta = max(0, ceil(T/4 - elapsed)), so it says 0 while
  the task still runs; progress = min(99 %, elapsed / (T/4)).
- `"stale"`: eta stays at the value of the task's first read (computed as `"accurate"`)
  and progress at 0 until the task ends.
- `"progress_only"`: no `eta` field; accurate progress.
- `"none"`: neither field (also what `progress_fields=False` means, whatever the mode).

Progress is a whole percentage and is 0 while the task is QUEUED, in every mode; eta is
whole seconds. Once the task has ended every mode answers progress 100 and eta 0 (for the
fields it sends).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import hmac
import math
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from bot.api.models import TaskStatus

Route = Literal["submit", "result", "video", "any"]
FaultKind = Literal["status", "malformed", "delay", "hang_after_accept", "disconnect"]
EtaMode = Literal["accurate", "too_long", "too_short", "stale", "progress_only", "none"]
WebhookMode = Literal["normal", "late", "duplicate", "drop"]

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
    # A task's own duration from its request body (without `extra`); None: `task_seconds`.
    duration_of: Callable[[dict[str, Any]], float] | None = None
    eta_mode: EtaMode = "accurate"  # what eta / progress_percent say (module docstring)
    # Webhooks (see bot.simulator.webhooks): how they go out, unless a task says otherwise.
    webhook_mode: WebhookMode = "normal"
    webhook_delay: float = 5.0  # "late": sent this many seconds after the task's end
    webhook_timeout: float = 5.0  # one delivery attempt gives up after this long
    webhook_retries: int = 5  # a timed-out or non-2xx attempt is retried this many times
    webhook_retry_delay: float = 1.0  # seconds between two attempts


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
class RandomFaults:
    """Faults played at random: each request of `route` plays a copy of one of `faults`
    (chosen uniformly) with probability `rate`, drawn from its own seeded generator.

    Queued faults (`fail_next` & co.) go first. A `hang_after_accept` fault may be in the mix
    of `"submit"` only: the task is created, then the answer waits `seconds`.
    """

    route: Route
    rate: float
    faults: tuple[Fault, ...]
    rng: random.Random
    active: bool = True
    played: list[Fault] = field(default_factory=list)  # every fault drawn, in order

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if not self.faults:
            raise ValueError("give at least one fault to play")
        if self.route != "submit" and any(f.kind == "hang_after_accept" for f in self.faults):
            raise ValueError("a hang_after_accept fault only makes sense on submit")

    def draw(self) -> Fault | None:
        """The fault this request plays, or None (most of the time)."""
        if not self.active or self.rng.random() >= self.rate:
            return None
        fault = dataclasses.replace(self.rng.choice(self.faults), times=1)
        self.played.append(fault)
        return fault

    def stop(self) -> None:
        self.active = False


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
    status: int | None = None  # the status answered; None: not (yet) answered, or dropped


@dataclass(frozen=True)
class Reading:
    """What a read of a task says at one moment; None: the field is not sent."""

    status: TaskStatus
    eta: int | None
    progress_percent: int | None


@dataclass
class SimTask:
    """One submitted task and the timeline it follows (see the module docstring)."""

    task_id: str
    model: str
    body: dict[str, Any]  # the request body as validated, `extra` taken out
    created: float  # time.monotonic()
    seconds: float  # its true duration T; 0 ends it at once
    fail_reason: str | None = None
    seed: int = 0
    created_wall: float = field(default_factory=time.time)
    done_at_wall: float | None = None
    extra: dict[str, Any] | None = None  # the submission's `extra`, as sent
    webhook_url: str | None = None  # extra.webhook.url
    webhook_mode: WebhookMode | None = None  # None: the config's `webhook_mode`
    eta_mode: EtaMode | None = None  # None: the config's `eta_mode`
    origin: str = ""  # scheme://host:port the task was submitted to (for its video URL)
    first_eta: int | None = None  # "stale": the eta its first read said

    @property
    def ends_at(self) -> float:
        """The monotonic time the task reaches SUCCEED or FAILED."""
        return self.created + max(self.seconds, 0.0)

    def progress(self, now: float) -> float:
        """The true fraction of the task's time that has passed, 0 to 1."""
        if self.seconds <= 0:
            return 1.0
        return min((now - self.created) / self.seconds, 1.0)

    def reading(self, now: float, config: SimulatorConfig) -> Reading:
        """Status, eta and progress a read at `now` answers, per the task's eta mode."""
        mode = (self.eta_mode or config.eta_mode) if config.progress_fields else "none"
        fraction = self.progress(now)
        if fraction >= 1.0:
            failed = self.fail_reason is not None
            status = TaskStatus.FAILED if failed else TaskStatus.SUCCEED
            eta, percent = 0, 100
        else:
            queued = fraction < config.queued_fraction
            status = TaskStatus.QUEUED if queued else TaskStatus.PROCESSING
            eta, share = self._estimate(now, mode)
            percent = 0 if queued else int(share * 100)
        return Reading(
            status=status,
            eta=None if mode in ("progress_only", "none") else eta,
            progress_percent=None if mode == "none" else percent,
        )

    def _estimate(self, now: float, mode: EtaMode) -> tuple[int, float]:
        """Seconds left and the fraction done, as a running task's service believes them."""
        elapsed, true = now - self.created, self.seconds
        if mode == "too_long":
            return math.ceil(4 * true - elapsed), elapsed / (4 * true)
        if mode == "too_short":
            return max(0, math.ceil(true / 4 - elapsed)), min(0.99, elapsed / (true / 4))
        if mode == "stale":
            if self.first_eta is None:
                self.first_eta = math.ceil(true - elapsed)
            return self.first_eta, 0.0
        return math.ceil(true - elapsed), elapsed / true


@dataclass
class SimulatorState:
    """Everything the simulator knows: config, records, tasks and pending faults."""

    config: SimulatorConfig
    requests: list[RecordedRequest] = field(default_factory=list)
    tasks: dict[str, SimTask] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    random_faults: list[RandomFaults] = field(default_factory=list)
    next_task_failures: list[str] = field(default_factory=list)
    next_task_seconds: list[float] = field(default_factory=list)  # durations, in order
    next_webhook_modes: list[WebhookMode] = field(default_factory=list)  # in order
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

    def draw_random_fault(self, route: Route) -> Fault | None:
        """A fault drawn by the first random rule for `route` that plays one, or None."""
        for rule in self.random_faults:
            if rule.route in (route, "any"):
                fault = rule.draw()
                if fault is not None:
                    return fault
        return None

    def duration_for(self, body: dict[str, Any]) -> float:
        """The true duration of a task submitted with `body` (consumes `next_task_seconds`)."""
        if self.next_task_seconds:
            return max(0.0, float(self.next_task_seconds.pop(0)))
        if self.config.duration_of is not None:
            return max(0.0, float(self.config.duration_of(body)))
        return self.config.task_seconds

    def sign(self, task_id: str, expires: int) -> str:
        """The signature of a video URL of `task_id` valid until `expires` (0: forever)."""
        message = f"{task_id}:{expires}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:32]

    async def hang(self, seconds: float) -> None:
        """Wait `seconds`, or less if the simulator closes first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closing.wait(), seconds)


STATE_KEY = web.AppKey("simulator_state", SimulatorState)
