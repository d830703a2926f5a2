"""Benchmark: one, two and three real bot processes on PostgreSQL beside one on SQLite.

    python tests/bench/bench_processes.py [--jobs 120] [--quick] [--members 24]
                                          [--concurrency 12] [--keep] [--verbose]

Prints one table; asserts nothing about speed (the numbers depend on the machine). Each
configuration runs real `python -m bot run` processes through the drills' harness
(`tests/drills/harness.py`: a `Cluster` with the fake Discord and the video API simulator
in this process, on loopback):

- SQLite ×1: one process on a SQLite file (no DATABASE_URL), no shard settings: the fake
  Discord has one shard and the process serves it (SQLite cannot be shared, so one process
  serving every server is the only SQLite layout there is);
- PostgreSQL ×1, ×2, ×3: N processes on one PostgreSQL schema of their own (dropped
  after), a fake Discord with N shards, process k started with SHARD_COUNT=N, SHARD_IDS=k.

The same workload everywhere: six servers (so they split evenly over one, two or three
shards: server i is on shard i mod N), `--members` members spread over them, and `--jobs`
`/video animate` commands sent round-robin over the servers (consecutive commands reach
different shards, hence different processes), at most `--concurrency` waiting for their
answer at once. Each member's allowance and concurrency are raised (DEFAULT_ALLOWANCE,
DEFAULT_MAX_CONCURRENT_JOBS) so nothing is refused; the API budgets never bind
(FAST_SETTINGS: 6000 a minute) and the simulator renders each video in 0.5–1 s (fixed per
prompt), so the bots, not the video service, set the pace. Before the clock starts, one
warm-up job per server is carried to the end (not counted).

Measured, per configuration:
- submissions/s: timed jobs answered "held" ÷ (first command sent → last "held" answer);
- jobs carried/s: jobs DELIVERED ÷ (first command sent → every timed job seen DELIVERED in
  the database, `cluster.jobs()`, read every 50 ms once every command is answered);
- held p50: per command, sent → its "held" answer (submissions/s ≈ concurrency ÷ this);
- post p50 / p95: per job, the interaction's time → its video's message in the channel
  (both on the fake Discord's clock);
- the ratio of both rates to SQLite ×1.
After each configuration: the shared checker (`tests/drills/checks.py`): its verdict is in
the table ("books"), so no speed is reported from a broken run without saying so.

Below the table, to tell what limited each configuration:
- CPU seconds spent during the timed part by this process (fake Discord + simulator + the
  benchmark), by the bots, by the PostgreSQL backends serving the bots (found by client
  port in pg_stat_activity), and by everything else on the machine (other people's work
  and their PostgreSQL backends: a busy machine skews every figure, look there first);
  the bots' CPU per job; how busy the machine was;
- (PostgreSQL) what the bots' database sessions were doing, sampled every 100 ms: idle,
  working, in a transaction waiting for the bot, or waiting for a lock, and which lock
  (the advisory locks are named: a server's, a member's, an API budget's);
- the warnings and errors the bots logged (log file:line of the first of each kind).
The working folders (bot logs) are removed unless `--keep` or something went wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import math
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.core.books import OPERATOR_KEY, guild_key, member_key
from bot.core.shared_budget import budget_key
from bot.simulator import Simulator, SimulatorConfig
from storage import Database
from storage.models import Job, JobState
from storage.postgres import PostgresDatabase, lock_id
from tests.backends import PgSchema, configured_url
from tests.drills.harness import BotProcess, Cluster, Server
from tests.fakediscord import FakeDiscord, FakeInteraction, FakeMember

SERVERS = 6  # splits evenly over 1, 2 and 3 shards
TASK_SECONDS = (0.5, 1.0)  # the simulator's rendering time, fixed per prompt
PREFIX = "bench job "
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CPU_NAMES = {
    "bench": "this process (fake Discord, simulator)",
    "bots": "bots",
    "postgres": "their PostgreSQL backends",
    "others": "everything else on the machine (other PostgreSQL clients too)",
}


@dataclass(frozen=True)
class Config:
    label: str
    postgres: bool
    processes: int

    @property
    def slug(self) -> str:
        return f"{'pg' if self.postgres else 'sqlite'}{self.processes}"


CONFIGS = (
    Config("SQLite ×1", False, 1),
    Config("PostgreSQL ×1", True, 1),
    Config("PostgreSQL ×2", True, 2),
    Config("PostgreSQL ×3", True, 3),
)


@dataclass
class Result:
    config: Config
    sent: int = 0
    held: int = 0
    delivered: int = 0
    not_held: list[str] = field(default_factory=list)
    submit_seconds: float | None = None
    carry_seconds: float | None = None
    post_seconds: list[float] = field(default_factory=list)
    held_seconds: list[float] = field(default_factory=list)  # command → its "held" answer
    checked: bool = False
    problems: list[str] = field(default_factory=list)
    figures: str = ""
    cpu: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before / after
    error: str | None = None
    findings: list[str] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)  # SessionSampler.describe()
    workdir: Path | None = None
    pg_server: str | None = None  # the PostgreSQL server the bots use
    setup_seconds: float = 0.0

    @property
    def submissions_per_second(self) -> float | None:
        if not self.submit_seconds or not self.held:
            return None
        return self.held / self.submit_seconds

    @property
    def carried_per_second(self) -> float | None:
        if not self.carry_seconds or not self.delivered:
            return None
        return self.delivered / self.carry_seconds

    @property
    def sound(self) -> bool:
        return self.checked and not self.problems and self.error is None


# --- the workload ------------------------------------------------------------------------


def task_seconds(body: dict[str, Any]) -> float:
    """The simulator's rendering time for a request: 0.5–1 s, the same for the same prompt."""
    digest = hashlib.sha256(str(body.get("prompt", "")).encode()).digest()
    low, high = TASK_SECONDS
    return low + (high - low) * digest[0] / 255


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def add_servers(cluster: Cluster, members: int, shards: int) -> list[Server]:
    counts = [members // SERVERS + (1 if i < members % SERVERS else 0) for i in range(SERVERS)]
    return [
        cluster.add_server(f"Bench{i}", max(1, count), shard_id=i % shards)
        for i, count in enumerate(counts)
    ]


def round_robin(servers: list[Server]) -> list[tuple[Server, FakeMember]]:
    """Every member once, consecutive ones in different servers (hence shards)."""
    deepest = max(len(server.members) for server in servers)
    return [
        (server, server.members[j])
        for j in range(deepest)
        for server in servers
        if j < len(server.members)
    ]


def prompt_of(job: Job) -> str:
    return str(job.params.get("prompt", ""))


# --- CPU accounting ----------------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def connected_ports(pids: list[int], server_port: int) -> set[int]:
    """The local ports of the TCP connections these processes hold to `server_port`."""
    inodes: set[str] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                remote_port = int(parts[2].rsplit(":", 1)[1], 16)
                if parts[9] in inodes and remote_port == server_port:
                    ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports


async def our_backends(server: str, pids: list[int]) -> list[int]:
    """The PostgreSQL backends serving the connections of these processes (by client port,
    pg_stat_activity)."""
    port = urlsplit(server).port or 5432
    ports = connected_ports(pids, port)
    if not ports:
        return []
    conn = await asyncpg.connect(server)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[])", list(ports)
        )
    finally:
        await conn.close()
    return [int(row["pid"]) for row in rows]


def machine_cpu() -> float:
    """CPU seconds every core of the machine has been busy (/proc/stat), all processes."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / CLOCK_TICKS


@dataclass
class CpuSnapshot:
    bench: float
    bots: dict[int, float]
    postgres: dict[int, float]  # the backends serving the bots
    machine: float

    @classmethod
    async def take(cls, bots: list[BotProcess], server: str | None) -> CpuSnapshot:
        pids = [bot.pid for bot in bots if bot.running]
        backends = await our_backends(server, pids) if server else []
        return cls(
            bench=time.process_time(),
            bots={pid: proc_cpu(pid) for pid in pids},
            postgres={pid: proc_cpu(pid) for pid in backends},
            machine=machine_cpu(),
        )

    def since(self, before: CpuSnapshot) -> dict[str, float]:
        """CPU seconds spent between `before` and this snapshot: this process, the bots,
        the PostgreSQL backends serving them (any that ended meanwhile are not counted),
        and every other process of the machine (what is left of the machine's total)."""

        def spent(now: dict[int, float], then: dict[int, float]) -> float:
            return sum(seconds - then.get(pid, 0.0) for pid, seconds in now.items())

        spent_by = {
            "bench": self.bench - before.bench,
            "bots": spent(self.bots, before.bots),
            "postgres": spent(self.postgres, before.postgres),
        }
        others = self.machine - before.machine - sum(spent_by.values())
        return {**spent_by, "others": max(0.0, others)}


SAMPLE = """
SELECT a.state, a.wait_event_type, a.wait_event, left(a.query, 60) AS query,
       (SELECT (l.classid::bigint << 32) | l.objid::bigint FROM pg_locks l
         WHERE l.pid = a.pid AND NOT l.granted AND l.locktype = 'advisory' LIMIT 1) AS advisory
FROM pg_stat_activity a WHERE a.pid = ANY($1::int[])
"""


def lock_names(servers: list[Server]) -> dict[int, str]:
    """The advisory locks the bots take (`store.lock`), by number."""
    names = {
        lock_id(budget_key("submissions")): "'API budget: submissions'",
        lock_id(budget_key("result reads")): "'API budget: result reads'",
        lock_id(OPERATOR_KEY): "'operator'",
    }
    for server in servers:
        names[lock_id(guild_key(server.guild.id))] = "'guild:<its server>'"
        for member in server.members:
            names[lock_id(member_key(server.guild.id, member.id))] = "'member:<a member>'"
    return names


class SessionSampler:
    """What the bots' PostgreSQL sessions are doing, sampled from pg_stat_activity every
    `interval` seconds: working, waiting for a lock (which statement), in a transaction
    waiting for the bot, or idle. Where the time goes on the database side."""

    def __init__(
        self,
        server: str,
        bots: list[BotProcess],
        lock_names: dict[int, str],
        interval: float = 0.1,
    ) -> None:
        self.server = server
        self.bots = bots
        self.lock_names = lock_names  # advisory lock number → what it guards
        self.interval = interval
        self.samples: Counter[str] = Counter()
        self.lock_waits: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None
        self.failure: str | None = None

    async def __aenter__(self) -> SessionSampler:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        except Exception as error:  # the sampler is a diagnosis: it never spoils the run
            self.failure = f"sampling stopped: {type(error).__name__}: {error}"

    async def _run(self) -> None:
        conn = await asyncpg.connect(self.server)
        try:
            backends: list[int] = []
            for n in itertools.count():
                if n % 10 == 0:  # the pools may open connections as they go
                    pids = [bot.pid for bot in self.bots if bot.running]
                    backends = await our_backends(self.server, pids)
                rows = await conn.fetch(SAMPLE, backends)
                for row in rows:
                    what = self._classify(row)
                    self.samples[what] += 1
                    if what == "waiting for a lock":
                        self.lock_waits[self._lock_of(row)] += 1
                await asyncio.sleep(self.interval)
        finally:
            await conn.close()

    def _lock_of(self, row: asyncpg.Record) -> str:
        if row["advisory"] is None:
            return f"{row['wait_event']} lock: {row['query']}"
        number = int(row["advisory"])
        number = number - 2**64 if number >= 2**63 else number
        return f"advisory lock {self.lock_names.get(number, number)}: {row['query']}"

    @staticmethod
    def _classify(row: asyncpg.Record) -> str:
        state = row["state"] or "unknown"
        if state == "active":
            return "waiting for a lock" if row["wait_event_type"] == "Lock" else "working"
        if state.startswith("idle in transaction"):
            return "in a transaction, waiting for the bot"
        return state

    def describe(self) -> list[str]:
        total = sum(self.samples.values())
        if not total:
            return [self.failure] if self.failure else []
        shares = ", ".join(
            f"{what} {100 * n / total:.0f} %" for what, n in self.samples.most_common()
        )
        lines = [f"bots' PostgreSQL sessions ({total} session samples): {shares}"]
        for what, n in self.lock_waits.most_common(3):
            lines.append(f"  lock wait {100 * n / total:.1f} % of samples: {what}")
        if self.failure:
            lines.append(self.failure)
        return lines


# --- the bots' logs ----------------------------------------------------------------------

LEVEL = re.compile(r"\] (WARNING|ERROR|CRITICAL)\s+(\S+): (.*)")
# discord.py's note at start that voice is not installed (the bot has no voice).
HARMLESS = ("voice will NOT be supported",)


def log_findings(bots: list[BotProcess]) -> list[str]:
    """Warnings and errors the bots logged, by kind (numbers blanked), with the log file
    and line of the first of each kind and how many there were."""
    kinds: dict[str, tuple[str, int]] = {}
    for bot in bots:
        for path in bot.logs:
            if not path.exists():
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                found = LEVEL.search(line)
                if found is None and not line.startswith("Traceback"):
                    continue
                if any(words in line for words in HARMLESS):
                    continue
                text = f"{found[1]} {found[2]}: {found[3]}" if found else line
                kind = re.sub(r"\d+", "N", text)[:160]
                first, count = kinds.get(kind, (f"{path}:{number}: {text[:200]}", 0))
                kinds[kind] = (first, count + 1)
    return [f"{count}× {first}" for first, count in kinds.values()]


# --- one configuration -------------------------------------------------------------------


async def run_config(config: Config, args: argparse.Namespace, root: Path) -> Result:
    result = Result(config)
    workdir = root / config.slug
    workdir.mkdir(parents=True)
    result.workdir = workdir
    shards = config.processes if config.postgres else 1
    jobs_per_member = math.ceil(args.jobs / args.members) + 1  # + the warm-up
    settings = {
        "DEFAULT_ALLOWANCE": str(100 * jobs_per_member + 1000),  # a job costs at most ~60
        "DEFAULT_MAX_CONCURRENT_JOBS": str(min(50, jobs_per_member)),
    }
    started = time.perf_counter()
    async with contextlib.AsyncExitStack() as stack:
        open_database: Callable[[], Awaitable[Database]] | None = None
        if config.postgres:
            server = configured_url()
            result.pg_server = server
            schema = await stack.enter_async_context(PgSchema.create(server))
            settings["DATABASE_URL"] = schema.url

            async def open_pg() -> Database:
                return await PostgresDatabase.open(
                    server, server_settings=schema.server_settings, min_connections=1
                )

            open_database = open_pg
        fake = await stack.enter_async_context(FakeDiscord(patch_discord=False, shard_count=shards))
        sim = await stack.enter_async_context(Simulator(SimulatorConfig(duration_of=task_seconds)))
        cluster = Cluster(fake, sim, workdir, settings=settings, open_database=open_database)
        stack.push_async_callback(cluster.close)
        bots: list[BotProcess] = []
        try:
            servers = add_servers(cluster, args.members, shards)
            if config.postgres:
                bots = [
                    cluster.add_bot(
                        f"shard{k}", shards=(k,), SHARD_COUNT=str(shards), SHARD_IDS=str(k)
                    )
                    for k in range(shards)
                ]
            else:
                bots = [cluster.add_bot("bot")]
            await asyncio.gather(*(cluster.start(bot, timeout=60) for bot in bots))
            await warm_up(cluster, servers)
            result.setup_seconds = time.perf_counter() - started
            await timed_run(cluster, servers, bots, args, result)
        except Exception as error:  # reported in the table; the run goes on
            result.error = f"{type(error).__name__}: {error}"
            if args.verbose:
                traceback.print_exc()
        try:
            if not await cluster.settle(timeout=args.timeout, quiet=0.5):
                result.problems.append("did not settle: jobs still moving or not terminal")
            report = await cluster.check()
            result.checked = True
            result.problems += report.problems
            result.figures = report.figures()
        except Exception as error:
            result.problems.append(f"checker did not run: {type(error).__name__}: {error}")
        for bot in bots:
            if bot.running:
                with contextlib.suppress(Exception):
                    code = await bot.terminate(timeout=30)
                    if code != 0:
                        result.problems.append(f"{bot.name} stopped with exit status {code}")
        result.findings = log_findings(bots)
    return result


async def warm_up(cluster: Cluster, servers: list[Server]) -> None:
    """One job per server carried to the end: every process has met its servers, the
    database, the simulator and the upload path once before the clock starts."""
    for i, server in enumerate(servers):
        interaction = await cluster.request_video(server, server.members[0], f"warm-up {i}")
        await interaction.wait_message(timeout=30)
        if not any("held" in text for text in interaction.texts):
            raise RuntimeError(f"warm-up job refused: {interaction.texts}")
    await cluster.wait_jobs(
        lambda js: len(js) == len(servers) and all(j.state is JobState.DELIVERED for j in js),
        "the warm-up jobs delivered",
        timeout=60,
    )


async def timed_run(
    cluster: Cluster,
    servers: list[Server],
    bots: list[BotProcess],
    args: argparse.Namespace,
    result: Result,
) -> None:
    order = round_robin(servers)
    slots = asyncio.Semaphore(args.concurrency)
    sent: dict[str, FakeInteraction] = {}
    answered: list[float] = []

    async def one(n: int) -> None:
        server, member = order[n % len(order)]
        prompt = f"{PREFIX}{n}"
        async with slots:
            asked = time.perf_counter()
            interaction = await cluster.request_video(server, member, prompt)
            sent[prompt] = interaction
            try:
                await interaction.wait_message(timeout=60)
            except TimeoutError:
                result.not_held.append(f"{prompt}: no answer in 60 s {interaction.rejections}")
                return
            moment = time.perf_counter()
        texts = interaction.texts
        if any("held" in text for text in texts):
            answered.append(moment)
            result.held_seconds.append(moment - asked)
        else:
            result.not_held.append(f"{prompt}: {texts} {interaction.rejections}")

    before = await CpuSnapshot.take(bots, result.pg_server)
    result.load = (os.getloadavg()[0], 0.0)

    def all_carried(jobs: list[Job]) -> bool:
        timed = [j for j in jobs if prompt_of(j).startswith(PREFIX)]
        return len(timed) >= result.held and all(j.state.is_terminal for j in timed)

    sampler = (
        SessionSampler(result.pg_server, bots, lock_names(servers)) if result.pg_server else None
    )
    async with sampler or contextlib.nullcontext():
        first_sent = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(args.jobs)))
        result.sent = len(sent)
        result.held = len(answered)
        if answered:
            result.submit_seconds = max(answered) - first_sent
        try:
            jobs = await cluster.wait_jobs(
                all_carried, "every timed job terminal", timeout=args.timeout, interval=0.05
            )
        finally:
            ended = time.perf_counter()
            result.cpu = (await CpuSnapshot.take(bots, result.pg_server)).since(before)
            result.wall = ended - first_sent
            result.load = (result.load[0], os.getloadavg()[0])
    if sampler is not None:
        result.sessions = sampler.describe()
    result.carry_seconds = ended - first_sent
    timed = [j for j in jobs if prompt_of(j).startswith(PREFIX)]
    delivered = [j for j in timed if j.state is JobState.DELIVERED]
    result.delivered = len(delivered)
    for job in delivered:
        interaction = sent.get(prompt_of(job))
        message = (
            cluster.fake.message(job.delivered_message_id)
            if job.delivered_message_id is not None
            else None
        )
        if interaction is not None and message is not None:
            result.post_seconds.append(message.created_at - interaction.created_at)
    others = sorted({j.state.value for j in timed} - {JobState.DELIVERED.value})
    if others:
        result.problems.append(f"timed jobs not DELIVERED: {others}")


# --- the report --------------------------------------------------------------------------


def rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "—"
    return f"{value / base:.2f}"


def print_table(results: list[Result], args: argparse.Namespace) -> None:
    base = next((r for r in results if not r.config.postgres and r.sound), None)
    base_submit = base.submissions_per_second if base else None
    base_carry = base.carried_per_second if base else None
    header = (
        f"{'configuration':<14} {'jobs':>9} {'subm/s':>7} {'held p50':>8} {'carried/s':>9} "
        f"{'post p50':>8} {'post p95':>8} {'×SQLite subm':>12} {'×SQLite carried':>15}  books"
    )
    print()
    print(
        f"{args.jobs} jobs per configuration, {args.members} members over {SERVERS} servers, "
        f"{args.concurrency} commands in flight, tasks {TASK_SECONDS[0]:g}–{TASK_SECONDS[1]:g} s, "
        f"{os.cpu_count()} CPU(s)"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        p50 = f"{percentile(r.post_seconds, 0.5):.2f} s" if r.post_seconds else "—"
        p95 = f"{percentile(r.post_seconds, 0.95):.2f} s" if r.post_seconds else "—"
        held = f"{percentile(r.held_seconds, 0.5):.2f} s" if r.held_seconds else "—"
        books = "balance" if r.sound else "BROKEN" if r.checked else "NOT CHECKED"
        print(
            f"{r.config.label:<14} {f'{r.delivered}/{args.jobs}':>9} "
            f"{rate(r.submissions_per_second):>7} {held:>8} {rate(r.carried_per_second):>9} "
            f"{p50:>8} {p95:>8} "
            f"{ratio(r.submissions_per_second, base_submit):>12} "
            f"{ratio(r.carried_per_second, base_carry):>15}  {books}"
        )
    print()
    print(
        "CPU seconds during the timed part (first command → last job delivered), "
        "in brackets as a share of one core:"
    )
    for r in results:
        if not r.cpu:
            continue
        wall = r.wall or 1.0
        parts = ", ".join(
            f"{CPU_NAMES[what]} {seconds:.1f} s ({100 * seconds / wall:.0f} %)"
            for what, seconds in r.cpu.items()
        )
        busy = sum(r.cpu.values()) / wall / (os.cpu_count() or 1)
        per_job = 1000 * (r.cpu["bots"] + r.cpu["postgres"]) / max(1, r.sent)
        print(f"  {r.config.label:<14} wall {r.wall:.1f} s: {parts}")
        print(
            f"  {'':<14} bots + their PostgreSQL: {per_job:.0f} ms of CPU a job; the machine "
            f"{100 * busy:.0f} % busy; load average {r.load[0]:.2f} → {r.load[1]:.2f}"
        )
        for line in r.sessions:
            print(f"  {'':<14} {line}")
    for r in results:
        lines = []
        if r.error:
            lines.append(f"error: {r.error}")
        if r.not_held:
            lines.append(f"{len(r.not_held)} command(s) not answered 'held', e.g. {r.not_held[0]}")
        lines += [f"checker: {problem}" for problem in r.problems[:10]]
        if len(r.problems) > 10:
            lines.append(f"checker: … and {len(r.problems) - 10} more")
        lines += [f"log: {finding}" for finding in r.findings[:12]]
        if len(r.findings) > 12:
            lines.append(f"log: … and {len(r.findings) - 12} more kinds")
        if args.verbose and r.figures:
            lines += r.figures.splitlines()
        print()
        print(f"{r.config.label} (set-up and warm-up {r.setup_seconds:.1f} s):")
        for line in lines or ["nothing to report: checker clean, no warning or error logged"]:
            print(f"  {line}")


async def main(args: argparse.Namespace) -> int:
    root = Path(tempfile.mkdtemp(prefix="bench_processes_"))
    started = time.perf_counter()
    results: list[Result] = []
    try:
        for config in CONFIGS:
            print(f"running {config.label} …", flush=True)
            result = await run_config(config, args, root)
            results.append(result)
            print(
                f"  {result.delivered}/{args.jobs} delivered, "
                f"{rate(result.submissions_per_second)} submissions/s, "
                f"{rate(result.carried_per_second)} jobs carried/s, "
                f"books {'balance' if result.sound else 'BROKEN'}",
                flush=True,
            )
    finally:
        print_table(results, args)
        keep = args.keep or any(not r.sound or r.findings for r in results)
        print()
        if keep:
            print(f"bot logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
        print(f"run time {time.perf_counter() - started:.0f} s")
    return 0 if all(r.sound for r in results) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=None, help="timed jobs (default 120)")
    parser.add_argument("--members", type=int, default=None, help="members (default 24)")
    parser.add_argument("--concurrency", type=int, default=12, help="commands in flight")
    parser.add_argument("--quick", action="store_true", help="36 jobs from 12 members")
    parser.add_argument("--timeout", type=float, default=None, help="wait for the jobs (s)")
    parser.add_argument("--keep", action="store_true", help="keep the bots' logs")
    parser.add_argument("--verbose", action="store_true", help="tracebacks and checker figures")
    arguments = parser.parse_args()
    if arguments.jobs is None:
        arguments.jobs = 36 if arguments.quick else 120
    if arguments.members is None:
        arguments.members = 12 if arguments.quick else 24
    if arguments.timeout is None:
        arguments.timeout = 60 + arguments.jobs
    if arguments.jobs < 1 or arguments.members < SERVERS or arguments.concurrency < 1:
        parser.error(f"--jobs and --concurrency must be at least 1, --members at least {SERVERS}")
    if math.ceil(arguments.jobs / arguments.members) + 1 > 50:
        parser.error("at most 49 jobs per member (DEFAULT_MAX_CONCURRENT_JOBS is at most 50)")
    sys.exit(asyncio.run(main(arguments)))
