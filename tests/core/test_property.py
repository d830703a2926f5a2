"""Property test: random sequences of submissions, results, failures, grants, allowance
changes, role allowances, members' roles, resets and period rollovers never break the
money rules.

After every step, for every member, the balance the service reports equals an independent
replay of the ledger rows; no balance is negative; every hold is settled at most once, by
the amount it held, in the way its job's state says. At the end every job is brought to an
end and every hold must be a commit or a release. What `quote` showed is what `submit` held.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from jobkit import IMAGE, FakeAPI, bad_request, make_settings, outcome_unknown, result

from bot.core import Core
from bot.core.quota import period_start
from bot.core.refusals import Refusal
from bot.core.submitting import SubmitRequest
from storage import Database, Job, JobState, LedgerEntry
from tests.backends import BACKENDS, make_backend
from tests.shared import T0, Clock

GUILD = 1
MEMBERS = (10, 11)
ROLES = (501, 502, 503)
MOD = 99
RELEASED = {JobState.FAILED, JobState.REJECTED, JobState.LOST, JobState.EXPIRED}
CHARGED = {JobState.SUCCEEDED, JobState.DELIVERED, JobState.UNDELIVERABLE}


@dataclass(frozen=True)
class Submit:
    member: int
    model: str
    duration: int
    resolution: str
    off_peak: bool
    outcome: str  # ok | reject | unknown


@dataclass(frozen=True)
class Result:
    pick: int
    status: str  # SUCCEED | FAILED | PROCESSING


@dataclass(frozen=True)
class PollError:
    pick: int
    not_found: bool


@dataclass(frozen=True)
class Deliver:
    pick: int
    ok: bool


@dataclass(frozen=True)
class Grant:
    member: int
    amount: int


@dataclass(frozen=True)
class SetAllowance:
    member: int
    allowance: int | None


@dataclass(frozen=True)
class RoleAllowance:
    role: int
    allowance: int | None  # None: the role's allowance is removed


@dataclass(frozen=True)
class MemberRoles:
    member: int
    roles: frozenset[int]


@dataclass(frozen=True)
class Reset:
    member: int


@dataclass(frozen=True)
class Rollover:
    hours: int


@dataclass(frozen=True)
class Housekeeping:
    recover: bool


members = st.sampled_from(MEMBERS)
submits = st.builds(
    Submit,
    member=members,
    model=st.sampled_from(["vidu-q3-pro-i2v", "vidu-q3-turbo-i2v"]),
    duration=st.integers(1, 6),
    resolution=st.sampled_from(["540p", "720p", "1080p"]),
    off_peak=st.booleans(),
    outcome=st.sampled_from(["ok", "ok", "ok", "reject", "unknown"]),
)
results = st.builds(
    Result, pick=st.integers(0, 20), status=st.sampled_from(["SUCCEED", "FAILED", "PROCESSING"])
)
# Submissions and results are listed twice: they are what most histories consist of.
steps = st.one_of(
    submits,
    submits,
    results,
    results,
    st.builds(PollError, pick=st.integers(0, 20), not_found=st.booleans()),
    st.builds(Deliver, pick=st.integers(0, 20), ok=st.booleans()),
    st.builds(Grant, member=members, amount=st.integers(-60, 80).map(lambda n: n or 1)),
    st.builds(SetAllowance, member=members, allowance=st.none() | st.integers(0, 120)),
    st.builds(
        RoleAllowance, role=st.sampled_from(ROLES), allowance=st.none() | st.integers(0, 120)
    ),
    st.builds(MemberRoles, member=members, roles=st.frozensets(st.sampled_from(ROLES))),
    st.builds(Reset, member=members),
    st.builds(Rollover, hours=st.sampled_from([1, 6, 23, 24, 24 * 7, 24 * 40])),
    st.builds(Housekeeping, recover=st.booleans()),
)


def replay_balance(
    entries: list[LedgerEntry], start: datetime | None, allowance: int | None
) -> tuple[int, int, int | None]:
    """(used, bonus, available) recomputed from the rows alone, independently of the SQL."""
    holds = {(e.job_id, e.pool): e for e in entries if e.kind == "hold"}
    settled = {(e.job_id, e.pool): e.kind for e in entries if e.kind in ("commit", "release")}

    def in_period(moment: datetime) -> bool:
        return start is None or moment >= start

    period_held = period_committed = bonus_spent = 0
    for key, hold in holds.items():
        outcome = settled.get(key)
        if hold.pool == "period" and in_period(hold.created_at):
            if outcome is None:
                period_held += hold.amount
            elif outcome == "commit":
                period_committed += hold.amount
        if hold.pool == "bonus" and outcome != "release":
            bonus_spent += hold.amount
    resets = sum(e.amount for e in entries if e.kind == "reset" and in_period(e.created_at))
    granted = sum(e.amount for e in entries if e.kind == "grant")
    used = period_held + period_committed - resets
    bonus = granted - bonus_spent
    assert used >= 0, "resets gave back more than was used"
    assert bonus >= 0, "more bonus spent than granted"
    available = None if allowance is None else max(0, allowance - used) + bonus
    return used, bonus, available


class Scenario:
    def __init__(self, db: Database) -> None:
        self.clock = Clock(T0)
        self.api = FakeAPI()
        self.settings = make_settings(
            default_allowance=30,
            default_period="day",
            default_max_concurrent_jobs=3,
            job_timeout_minutes=600,
            off_peak_job_timeout_minutes=3000,
        )
        self.db = db
        self.core = Core.build(db, self.api, self.settings, clock=self.clock)
        # The model of allowances: a member's own setting (absent: none; None: unlimited),
        # the roles' allowances, and the roles each member holds.
        self.own: dict[int, int | None] = {}
        self.role_allowances: dict[int, int] = {}
        self.roles: dict[int, frozenset[int]] = dict.fromkeys(MEMBERS, frozenset())
        self.quoted: dict[int, int] = {}

    def allowance(self, member: int) -> int | None:
        """What the member's allowance must be, by the rules, from the model alone."""
        if member in self.own:
            return self.own[member]
        held = [self.role_allowances[r] for r in self.roles[member] if r in self.role_allowances]
        return max(held) if held else 30

    async def jobs(self) -> list[Job]:
        async with self.db.read() as store:
            return await store.jobs_in_states(list(JobState))

    async def pick(self, pick: int, states: set[JobState]) -> Job | None:
        candidates = [j for j in await self.jobs() if j.state in states and j.task_id]
        return candidates[pick % len(candidates)] if candidates else None

    async def run(self, step: Any) -> None:
        core = self.core
        if isinstance(step, Submit):
            body: dict[str, Any] = {
                "images": [IMAGE],
                "duration": step.duration,
                "resolution": step.resolution,
                "off_peak": step.off_peak,
            }
            roles = tuple(self.roles[step.member])
            quote = await core.submitting.quote(GUILD, step.member, step.model, body, roles)
            if step.outcome == "reject":
                self.api.failures.append(bad_request())
            elif step.outcome == "unknown":
                self.api.failures.append(outcome_unknown())
            try:
                job = await core.submitting.submit(
                    SubmitRequest(GUILD, 5, step.member, step.model, body, role_ids=roles)
                )
            except Refusal as refusal:
                event(f"refused: {refusal.code}")
                self.api.failures.clear()
                if refusal.code == "not_enough_credits":
                    assert not quote.affordable
                else:
                    assert refusal.code == "too_many_jobs", refusal.code
                return
            assert quote.affordable
            event(f"submitted: {job.state.value}")
            self.quoted[job.id] = quote.price
            assert job.price == quote.price
        elif isinstance(step, Result):
            picked = await self.pick(step.pick, {JobState.QUEUED, JobState.PROCESSING})
            if picked is not None:
                await core.lifecycle.apply_result(picked.id, result(step.status, reason="nope"))
        elif isinstance(step, PollError):
            from bot.api import errors

            picked = await self.pick(step.pick, {JobState.QUEUED, JobState.PROCESSING})
            if picked is not None:
                error: errors.VideoAPIError = (
                    errors.TaskNotFoundError(404, "TASK_NOT_FOUND", "gone")
                    if step.not_found
                    else errors.ServerError(503, "", "down")
                )
                await core.lifecycle.poll_failed(picked.id, error)
        elif isinstance(step, Deliver):
            picked = await self.pick(step.pick, {JobState.SUCCEEDED})
            if picked is not None:
                if step.ok:
                    await core.lifecycle.mark_delivered(picked.id, 1000 + picked.id)
                else:
                    await core.lifecycle.mark_undeliverable(picked.id, "channel gone")
        elif isinstance(step, Grant):
            try:
                await core.moderation.grant_bonus(GUILD, step.member, step.amount, "", MOD)
            except Refusal as refusal:
                assert step.amount < 0 and refusal.code == "invalid_request"
        elif isinstance(step, SetAllowance):
            await core.moderation.set_allowance(GUILD, step.member, step.allowance, MOD)
            self.own[step.member] = step.allowance
        elif isinstance(step, RoleAllowance):
            if step.allowance is not None:
                await core.moderation.set_role_allowance(GUILD, step.role, step.allowance, MOD)
                self.role_allowances[step.role] = step.allowance
            elif step.role in self.role_allowances:
                await core.moderation.remove_role_allowance(GUILD, step.role, MOD)
                del self.role_allowances[step.role]
        elif isinstance(step, MemberRoles):
            self.roles[step.member] = step.roles
        elif isinstance(step, Reset):
            await core.moderation.reset_usage(GUILD, step.member, MOD)
        elif isinstance(step, Rollover):
            self.clock.advance(hours=step.hours)
        elif isinstance(step, Housekeeping):
            if step.recover:
                await core.housekeeping.recover(60)
            else:
                await core.housekeeping.expire_overdue()

    async def check(self) -> None:
        async with self.db.read() as store:
            entries = await store.ledger_entries(GUILD)
        jobs = {job.id: job for job in await self.jobs()}
        start = period_start("day", self.clock.now)
        for member in MEMBERS:
            mine = [e for e in entries if e.user_id == member]
            used, bonus, available = replay_balance(mine, start, self.allowance(member))
            balance = await self.core.moderation.balance(GUILD, member, self.roles[member])
            assert (balance.used, balance.bonus, balance.available) == (used, bonus, available)
            assert balance.allowance == self.allowance(member)
            assert balance.used >= 0 and balance.bonus >= 0 and balance.held >= 0
            assert balance.available is None or balance.available >= 0
        holds: dict[tuple[int | None, str | None], LedgerEntry] = {}
        settlements: dict[tuple[int | None, str | None], LedgerEntry] = {}
        for entry in entries:
            key = (entry.job_id, entry.pool)
            if entry.kind == "hold":
                assert key not in holds
                holds[key] = entry
            elif entry.kind in ("commit", "release"):
                assert key not in settlements, "a hold settled twice"
                assert key in holds and holds[key].amount == entry.amount
                settlements[key] = entry
        for job_id, job in jobs.items():
            job_holds = [h for (j, _), h in holds.items() if j == job_id]
            assert sum(h.amount for h in job_holds) == job.price == self.quoted[job_id]
            outcomes = {
                settlements[k].kind if k in settlements else None for k in holds if k[0] == job_id
            }
            if job.state in RELEASED:
                assert outcomes == {"release"}, (job.state, outcomes)
            elif job.state in CHARGED:
                assert outcomes == {"commit"}, (job.state, outcomes)
            else:
                assert outcomes == {None}, (job.state, outcomes)

    async def finish(self) -> None:
        """Bring every job to an end; then every hold must be a commit or a release."""
        self.api.failures.clear()
        for job in await self.jobs():
            if job.state in (JobState.QUEUED, JobState.PROCESSING):
                await self.core.lifecycle.apply_result(job.id, result("SUCCEED"))
        for job in await self.jobs():
            if job.state is JobState.SUCCEEDED:
                await self.core.lifecycle.mark_delivered(job.id, 1)
        await self.core.housekeeping.recover(60)
        await self.check()
        async with self.db.read() as store:
            entries = await store.ledger_entries(GUILD)
        held = {(e.job_id, e.pool) for e in entries if e.kind == "hold"}
        settled = {(e.job_id, e.pool) for e in entries if e.kind in ("commit", "release")}
        assert held == settled
        for job in await self.jobs():
            assert job.state.is_terminal
            event(f"ended: {job.state.value}")


async def play(backend_name: str, script: list[Any]) -> None:
    # A fresh store per example (the function-scoped `db` fixture would be shared by all).
    with tempfile.TemporaryDirectory() as folder:
        async with make_backend(backend_name, Path(folder)) as backend:
            scenario = Scenario(await backend.open())
            event(f"steps: {len(script) // 10 * 10}+")
            for step in script:
                await scenario.run(step)
                await scenario.check()
            await scenario.finish()


# The rules are the core's; PostgreSQL runs fewer histories (each one a schema of its own),
# enough to show that every query sums the same there.
EXAMPLES = {"sqlite": 100, "postgres": 30}


@pytest.mark.parametrize("dialect", BACKENDS)
def test_random_histories_keep_the_books_balanced(dialect: str) -> None:
    @settings(
        max_examples=EXAMPLES[dialect],
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        derandomize=False,
    )
    @given(st.lists(steps, min_size=8, max_size=40))
    def histories(script: list[Any]) -> None:
        asyncio.run(play(dialect, script))

    histories()
