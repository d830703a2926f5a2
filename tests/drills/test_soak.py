"""Soak: many jobs from many members in several servers, about 5 % faults on both sides, one
kill-and-restart in the middle, then the shared checker.

The small soak (30 jobs, 3 members, 3 servers) runs with the suite; the full one (300
jobs, 30 members) is added with `VIDU_SOAK=full` or `--soak=full`. Both print their figures
at the end of the run ("drill figures").

Noise: the simulator answers ~5 % of submissions and of result reads with a 5xx, a 429,
a timeout (an answer slower than the bot's timeout), a dropped connection, or (submissions)
a task created whose answer never comes; ~5 % of prompts make a task that fails. The fake
Discord answers ~5 % of message posts and edits with a 503, a 429, or a dropped connection
(the post landed, or not).

A submission whose outcome is unknown is given up by a running bot only after
SUBMIT_TIMEOUT_SECONDS plus a fixed 60 s grace, which a soak of well under a minute cannot
wait for. So the small soak plays those faults (5xx, timeouts, drops, hangs on submit)
only before its kill, whose restart settles them (LOST, credits returned); after it,
submissions meet 429s only. The full soak plays them throughout and waits for the grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import pytest

from bot.simulator import Fault, RandomFaults, Simulator, SimulatorConfig
from storage.models import JobState
from tests.drills.harness import Cluster, Server
from tests.fakediscord import FakeDiscord, FakeInteraction, FakeMember
from tests.fakediscord.models import Fault as DiscordFault
from tests.fakediscord.models import RecordedRequest

T = TypeVar("T")

SUBMIT_TIMEOUT = 2.0
REQUEST_TIMEOUT = 1.0


@dataclass(frozen=True)
class SoakPlan:
    name: str
    jobs: int
    members: int
    servers: int
    in_flight: int  # commands waiting for their answer at once
    interval: float  # seconds between two commands: the work is spread over the run
    unknown_submit_outcomes_after_kill: bool
    settle_timeout: float
    fault_rate: float = 0.05
    failing_share: float = 0.05  # prompts the video service fails
    # Chosen so the small soak's first half meets submit faults of unknown outcome (a drop,
    # a task created whose answer never came) and its second half a 429: see the figures.
    seed: int = 20251208


SMALL = SoakPlan(
    "small",
    jobs=30,
    members=3,
    servers=3,
    in_flight=6,
    interval=0.25,
    unknown_submit_outcomes_after_kill=False,
    settle_timeout=45,
)
FULL = SoakPlan(
    "full",
    jobs=300,
    members=30,
    servers=3,
    in_flight=12,
    interval=0.15,
    unknown_submit_outcomes_after_kill=True,
    settle_timeout=SUBMIT_TIMEOUT + 60 + 300,
)


def wanted_plans(config: pytest.Config) -> list[SoakPlan]:
    asked = config.getoption("--soak", default=None) or os.environ.get("VIDU_SOAK", "small")
    return [SMALL, FULL] if asked == "full" else [SMALL]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "plan" in metafunc.fixturenames:
        plans = wanted_plans(metafunc.config)
        metafunc.parametrize("plan", plans, ids=[p.name for p in plans])


@pytest.fixture
def sim_config(plan: SoakPlan) -> SimulatorConfig:
    durations = random.Random(plan.seed)
    return SimulatorConfig(duration_of=lambda _body: durations.uniform(0.3, 2.5))


# --- noise -------------------------------------------------------------------------------


def api_noise(sim: Simulator, plan: SoakPlan, *, unknown_outcomes: bool) -> list[RandomFaults]:
    """~`fault_rate` of submissions and of reads misbehave."""
    submit = [Fault("submit", "status", status=429, reason="RATE_LIMIT_EXCEEDED", retry_after=0.2)]
    if unknown_outcomes:
        submit += [
            Fault("submit", "status", status=503),
            Fault("submit", "status", status=500, reason="CREATE_TASK_FAILED"),
            Fault("submit", "delay", seconds=SUBMIT_TIMEOUT + 1),  # no task: the client left
            Fault("submit", "disconnect"),
            Fault("submit", "hang_after_accept", seconds=SUBMIT_TIMEOUT + 1),  # a task, no id
        ]
    reads = [
        Fault("result", "status", status=503),
        Fault("result", "status", status=500, reason="GET_RESULT_FAILED"),
        Fault("result", "status", status=429, reason="RATE_LIMIT_EXCEEDED", retry_after=0.2),
        Fault("result", "delay", seconds=REQUEST_TIMEOUT + 1),
        Fault("result", "disconnect"),
    ]
    seed = plan.seed + (1 if unknown_outcomes else 2)
    return [
        sim.fault_randomly("submit", submit, rate=plan.fault_rate, seed=seed),
        sim.fault_randomly("result", reads, rate=plan.fault_rate, seed=seed + 10),
    ]


def what_it_is(request: RecordedRequest) -> str:
    """A request to Discord named by what it carries (a job's card in some state, a post
    naming a job), not by when it came: the same in every run."""
    body = request.json if isinstance(request.json, dict) else {}
    for embed in (body.get("embeds") or [])[:1]:
        return f"{request.method} card {embed.get('title', '')}"
    found = re.search(r"job #\d+", str(body.get("content") or ""))
    return f"{request.method} {found.group(0) if found else request.path}"


def discord_noise(fake: FakeDiscord, plan: SoakPlan) -> list[DiscordFault]:
    """~`fault_rate` of message posts and edits: 503, 429, or dropped (landed or not).

    Whether a request fails is drawn from the seed and what the request is (and how many
    times it was tried), not from the order requests happen to arrive in, so every run
    plays the same faults on the same jobs.
    """
    tries: Counter[str] = Counter()
    named: dict[int, str] = {}  # id(request) -> its name and try (the fake keeps requests)

    def name(request: RecordedRequest) -> str:
        if id(request) not in named:
            key = what_it_is(request)
            tries[key] += 1
            named[id(request)] = f"{key} try {tries[key]}"
        return named[id(request)]

    def chance(salt: str) -> Callable[[RecordedRequest], bool]:
        def fails(request: RecordedRequest) -> bool:
            draw = random.Random(f"{plan.seed}:{salt}:{name(request)}").random()
            return draw < plan.fault_rate / 4

        return fails

    faults: list[DiscordFault] = []
    for route in ("POST /channels/*/messages", "PATCH /channels/*/messages/*"):
        faults.append(fake.fail(route, 503, times=None, when=chance(f"{route} 503")))
        faults.append(fake.fail(route, 429, times=None, when=chance(f"{route} 429")))
        faults.append(
            fake.drop_connection(route, times=None, accept=True, when=chance(f"{route} landed"))
        )
        faults.append(
            fake.drop_connection(route, times=None, accept=False, when=chance(f"{route} lost"))
        )
    return faults


# --- members at work ---------------------------------------------------------------------


@dataclass
class Members:
    """Who asks for which video, and what came of each command."""

    cluster: Cluster
    plan: SoakPlan
    servers: list[Server]
    sent: dict[int, FakeInteraction] = field(default_factory=dict)
    paused: bool = False

    def who(self, index: int) -> tuple[Server, FakeMember]:
        everyone = [(s, m) for s in self.servers for m in s.members]
        return everyone[index % len(everyone)]

    def prompt(self, index: int) -> str:
        every = round(1 / self.plan.failing_share)
        words = "a forbidden dance" if index % every == every // 2 else "a cat waves"
        return f"soak {index}: {words}"

    async def ask(self, indices: list[int]) -> None:
        """Each command in turn, at most `in_flight` waiting for their answer at once."""
        slots = asyncio.Semaphore(self.plan.in_flight)

        async def one(index: int) -> None:
            async with slots:
                if self.paused:
                    return
                server, member = self.who(index)
                interaction = await self.cluster.request_video(server, member, self.prompt(index))
                self.sent[index] = interaction
                with contextlib.suppress(TimeoutError):
                    await interaction.wait_message(timeout=30)

        started = []
        try:
            for index in indices:
                if self.paused:
                    break
                started.append(asyncio.create_task(one(index)))
                await asyncio.sleep(self.plan.interval)
            await asyncio.gather(*started)
        finally:
            for task in started:
                task.cancel()
            await asyncio.gather(*started, return_exceptions=True)

    def unanswered(self, indices: Iterable[int]) -> list[int]:
        """Commands among `indices` that got no answer with content (a defer at most)."""
        return sorted(i for i in indices if not any(not m.loading for m in self.sent[i].messages))


def counts(items: Iterable[T], key: Callable[[T], str]) -> str:
    found = Counter(key(item) for item in items)
    return ", ".join(f"{k} {v}" for k, v in sorted(found.items())) or "none"


def fault_name(fault: Fault) -> str:
    return f"{fault.route} {fault.status if fault.kind == 'status' else fault.kind}"


async def test_soak(cluster: Cluster, plan: SoakPlan, request: pytest.FixtureRequest) -> None:
    started = time.monotonic()
    cluster.settings.update(
        {
            "DEFAULT_ALLOWANCE": "1000000",
            "DEFAULT_MAX_CONCURRENT_JOBS": "50",
            "SUBMIT_TIMEOUT_SECONDS": str(SUBMIT_TIMEOUT),
            "REQUEST_TIMEOUT_SECONDS": str(REQUEST_TIMEOUT),
            "POLL_MIN_SECONDS": "0.1",
            "POLL_MAX_SECONDS": "1",
        }
    )
    per_server = plan.members // plan.servers
    servers = [cluster.add_server(f"Server {s}", per_server) for s in range(plan.servers)]
    members = Members(cluster, plan, servers)
    sim, fake = cluster.sim, cluster.fake
    noise = api_noise(sim, plan, unknown_outcomes=True)
    fake_faults = discord_noise(fake, plan)

    bot = await cluster.start()
    first = asyncio.create_task(members.ask(list(range(plan.jobs))))
    # The kill comes in the middle: half the jobs exist and videos are being delivered.
    await cluster.wait_jobs(
        lambda jobs: (
            len(jobs) >= plan.jobs // 2 and any(j.state is JobState.DELIVERED for j in jobs)
        ),
        "half the jobs, some delivered",
        timeout=60,
    )
    members.paused = True
    await bot.kill()
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    at_kill = await cluster.jobs()
    if not plan.unknown_submit_outcomes_after_kill:
        for rule in noise:
            rule.stop()
        noise += api_noise(sim, plan, unknown_outcomes=False)

    await cluster.start(bot)
    asked_before = set(members.sent)
    members.paused = False
    await members.ask([i for i in range(plan.jobs) if i not in asked_before])
    settled = await cluster.settle(timeout=plan.settle_timeout, quiet=1.0)

    report = await cluster.check()
    report.seconds = time.monotonic() - started
    cut_off = members.unanswered(asked_before)  # the kill came before their answer
    late = members.unanswered(set(members.sent) - asked_before)
    if late:
        report.problems.append(f"commands after the restart never answered: {late}")
    played = [f for rule in noise for f in rule.played]
    report.extra.update(
        {
            "plan": f"{plan.jobs} jobs from {plan.members} members in {plan.servers} servers",
            "commands": f"{len(members.sent)} sent, {len(asked_before)} before the kill "
            f"({len(cut_off)} cut off by it)",
            "at the kill": counts(at_kill, lambda job: job.state.value),
            "API faults played": counts(played, fault_name),
            "Discord faults played": ", ".join(
                f"{f.pattern.split()[0]} {f.status or ('landed, dropped' if f.accept else 'dropped')}"
                f" {f.hits}"
                for f in fake_faults
            ),
            "settled": settled,
        }
    )
    assert report.ok, report.describe()
    assert report.duplicate_posts == 0
    # The run was the one planned: faults did play on both sides, and every command that
    # was answered made its job.
    assert played and any(f.hits for f in fake_faults), report.describe()
    assert report.jobs >= plan.jobs - len(cut_off), report.describe()
