"""The one checker every drill and the soak end with: what must be true once things settle.

`check(db, fake, sim)` reads the bots' database (through the storage API), the fake
Discord's messages and the simulator's records, and returns a `Report`: figures, and a
list of problems, each naming the job and what is wrong. No problem means:

- every job is terminal (DELIVERED, UNDELIVERABLE, FAILED, REJECTED, LOST, EXPIRED);
- no credit lost, none charged twice: every hold of a job has exactly one commit or
  release of the same amount in its pool; a job that produced a video (DELIVERED,
  UNDELIVERABLE) committed its holds, every other job released them; per member nothing
  is still held and what was charged is the price of their jobs that produced a video;
- the video API got exactly one submission for each job with a task id (and that task is
  the job's request), and no request was ever sent twice (a retry after a 429, which the
  service answers to a request it did not carry out, is not a second sending); a task the
  API made for a job that holds its id must end in that job producing a video;
- every video made is posted exactly once, as the id the job stored, in the channel as a
  reply to the job's card (or by DM), and nothing is posted for a job without a video;
- the member was told: every card of the job shows its final state; with no card they got
  a DM naming the job; a member told "I will tell you by direct message" got that DM.

Tasks the API made that no job knows (a submission whose answer never came: the job was
given up as LOST, never sent again) are counted, not blamed: that is the policy.
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.discord.cards import STATE_LOOK
from bot.simulator import RecordedRequest as SimRequest
from bot.simulator import SimTask, Simulator
from storage import Database
from storage.models import Job, JobState, LedgerEntry
from tests.e2e.helpers import video_posts
from tests.fakediscord import FakeDiscord, StoredMessage

CHARGED = frozenset({JobState.DELIVERED, JobState.UNDELIVERABLE})
PROMISE = "I will tell you by direct message"


@dataclass
class Report:
    """What the checker found. `problems` empty: the run was sound."""

    problems: list[str] = field(default_factory=list)
    jobs_by_state: Counter[str] = field(default_factory=Counter)
    jobs: int = 0
    submissions: int = 0
    refused_submissions: int = 0  # answered 4xx (e.g. 429): nothing made, may be retried
    result_reads: int = 0
    read_answers: Counter[str] = field(default_factory=Counter)  # status (or "none") → reads
    tasks: int = 0
    orphan_tasks: int = 0  # made by the API, known to no job (LOST by policy)
    video_posts: int = 0
    duplicate_posts: int = 0
    dms: int = 0
    credits_held: int = 0  # every hold ever placed
    credits_charged: int = 0
    credits_returned: int = 0
    members: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)  # figures a caller adds

    @property
    def ok(self) -> bool:
        return not self.problems

    def figures(self) -> str:
        states = ", ".join(f"{state} {n}" for state, n in sorted(self.jobs_by_state.items()))
        answers = ", ".join(f"{status} {n}" for status, n in sorted(self.read_answers.items()))
        lines = [
            f"jobs: {self.jobs} ({states or 'none'}) from {self.members} member(s)",
            f"video API: {self.submissions} submissions ({self.refused_submissions} refused), "
            f"{self.result_reads} result reads (answered {answers or 'none'}), "
            f"{self.tasks} tasks ({self.orphan_tasks} known to no job)",
            f"Discord: {self.video_posts} video posts, {self.duplicate_posts} duplicates, "
            f"{self.dms} DMs",
            f"credits: {self.credits_held} held, {self.credits_charged} charged, "
            f"{self.credits_returned} returned",
        ]
        lines += [f"{key}: {value}" for key, value in self.extra.items()]
        if self.seconds:
            lines.append(f"time: {self.seconds:.1f} s")
        return "\n".join(lines)

    def describe(self) -> str:
        found = "\n".join(f"  - {p}" for p in self.problems) or "  (none)"
        return f"{self.figures()}\nproblems ({len(self.problems)}):\n{found}"


# The last report of every drill and soak of this session, by test, printed in the terminal
# summary (tests/drills/conftest.py).
DRILL_REPORTS = pytest.StashKey[dict[str, "Report"]]()


def marker(job_id: int) -> re.Pattern[str]:
    """How the bot's own messages name a job ("job #1" must not match "job #12")."""
    return re.compile(rf"\bjob #{job_id}(?![0-9])", re.IGNORECASE)


def card_title(job: Job) -> str:
    return f"Video job #{job.id} · {STATE_LOOK[job.state][0]}"


@dataclass
class Discord:
    """The bot's visible messages in the fake, indexed for the checks."""

    fake: FakeDiscord
    posts: dict[int, list[StoredMessage]] = field(default_factory=dict)  # video posts by job
    cards: dict[int, list[StoredMessage]] = field(default_factory=dict)  # card messages by job
    dm_channels: set[int] = field(default_factory=set)

    @classmethod
    def read(cls, fake: FakeDiscord) -> Discord:
        seen = cls(fake, dm_channels={c.id for c in fake.dm_channels.values()})
        bot_id = fake.bot_user.id
        card = re.compile(r"^Video job #(\d+) · ")
        for message in fake.all_messages():
            if message.author_id != bot_id or message.deleted or message.ephemeral:
                continue
            for embed in message.embeds[:1]:
                found = card.match(str(embed.get("title", "")))
                if found:
                    seen.cards.setdefault(int(found.group(1)), []).append(message)
        return seen

    def video_posts(self, job: Job) -> list[StoredMessage]:
        return video_posts(self.fake, job)

    def dms_naming(self, job: Job) -> list[StoredMessage]:
        named = marker(job.id)
        return [m for m in self.fake.dms(job.user_id) if named.search(m.content)]

    def private_answers(self, job: Job) -> list[StoredMessage]:
        """The bot's private (ephemeral) answers that name the job."""
        named = marker(job.id)
        bot_id = self.fake.bot_user.id
        return [
            m
            for m in self.fake.all_messages()
            if m.author_id == bot_id and m.ephemeral and named.search(m.content)
        ]


async def check(db: Database, fake: FakeDiscord, sim: Simulator) -> Report:
    """Every check above, over everything the run left behind."""
    report = Report()
    async with db.read() as store:
        jobs = await store.jobs_in_states(list(JobState))
        ledger = await store.ledger_entries()
        members = sorted({(j.guild_id, j.user_id) for j in jobs})
        usage = {m: await store.member_usage(m[0], m[1], None) for m in members}
    discord = Discord.read(fake)
    report.jobs = len(jobs)
    report.members = len(members)
    report.jobs_by_state = Counter(j.state.value for j in jobs)
    report.submissions = len(sim.submissions)
    report.refused_submissions = sum(1 for s in sim.submissions if not may_have_made_a_task(s))
    report.result_reads = len(sim.result_reads)
    report.read_answers = Counter(str(r.status or "none") for r in sim.result_reads)
    report.tasks = len(sim.tasks)
    report.dms = sum(len(fake.messages(c)) for c in discord.dm_channels)

    problems = report.problems
    for job in jobs:
        where = f"job #{job.id} ({job.state.value})"
        if not job.state.is_terminal:
            problems.append(f"{where}: not terminal")
        check_submissions(job, sim, where, problems)
        check_posts(job, discord, report, where, problems)
        check_told(job, discord, where, problems)
    check_ledger(jobs, ledger, usage, report, problems)

    known_tasks = {j.task_id for j in jobs if j.task_id}
    report.orphan_tasks = sum(1 for task_id in sim.tasks if task_id not in known_tasks)
    job_bodies = [j.params for j in jobs]
    strays = [s for s in sim.submissions if body_of(s.json) not in job_bodies]
    if strays:
        problems.append(f"{len(strays)} submission(s) match no job's request")
    return report


def body_of(sent: Any) -> Any:
    """A submission's body as the job stores it (`extra`, the webhook's place, left out)."""
    if isinstance(sent, dict):
        return {key: value for key, value in sent.items() if key != "extra"}
    return sent


def video_made(task: SimTask) -> bool:
    return task.fail_reason is None and time.monotonic() >= task.ends_at


def may_have_made_a_task(request: SimRequest) -> bool:
    """A submission the service did not refuse (4xx: nothing made, e.g. a 429 the client
    may retry): accepted, failed on the service's side (5xx), or never answered."""
    return request.status is None or not 400 <= request.status < 500


def check_submissions(job: Job, sim: Simulator, where: str, problems: list[str]) -> None:
    mine = [s for s in sim.submissions if body_of(s.json) == job.params]
    sent = [s for s in mine if may_have_made_a_task(s)]
    if len(sent) > 1:
        answers = [s.status for s in mine]
        problems.append(
            f"{where}: its request reached the video API {len(sent)} times (answers {answers})"
        )
    if job.task_id is None:
        return
    if len(sent) != 1:
        problems.append(f"{where}: has task {job.task_id} but {len(sent)} submissions")
    task = sim.tasks.get(job.task_id)
    if task is None:
        problems.append(f"{where}: the video API knows no task {job.task_id}")
        return
    if task.body != job.params:
        problems.append(f"{where}: task {job.task_id} was made for another request")
    if video_made(task) and job.state not in CHARGED:
        problems.append(
            f"{where}: the video API made its video (task {job.task_id} succeeded) "
            "but the job never delivered it"
        )
    if job.state in CHARGED and not video_made(task):
        problems.append(f"{where}: charged, but task {job.task_id} made no video")


def check_posts(
    job: Job, discord: Discord, report: Report, where: str, problems: list[str]
) -> None:
    posts = discord.video_posts(job)
    report.video_posts += len(posts)
    report.duplicate_posts += max(0, len(posts) - 1)
    if job.state is not JobState.DELIVERED:
        if posts:
            problems.append(f"{where}: {len(posts)} video post(s) for a job without one")
        return
    if len(posts) != 1:
        ids = [p.id for p in posts]
        problems.append(f"{where}: its video was posted {len(posts)} times {ids}")
    if job.delivered_message_id not in [p.id for p in posts]:
        problems.append(
            f"{where}: stored post {job.delivered_message_id} is not one of its video posts"
        )
    cards = [job.card_message_id] if job.card_message_id else []
    cards += [c.id for c in discord.cards.get(job.id, []) if c.id not in cards]
    for post in posts:
        if post.channel_id in discord.dm_channels:
            continue  # by DM: the channel could not be used
        if post.channel_id != job.channel_id:
            problems.append(f"{where}: video posted in channel {post.channel_id}, not its own")
        elif cards and post.reply_to not in cards:
            problems.append(
                f"{where}: video post {post.id} does not reply to its card "
                f"(replies to {post.reply_to}; cards {cards})"
            )


def check_told(job: Job, discord: Discord, where: str, problems: list[str]) -> None:
    cards = discord.cards.get(job.id, [])
    dms = discord.dms_naming(job)
    if job.state.is_terminal:
        wanted = card_title(job)
        for card in cards:
            shown = str(card.embeds[0].get("title", ""))
            if shown != wanted:
                problems.append(f"{where}: card {card.id} shows {shown!r}, not {wanted!r}")
    if not cards and not dms:
        if job.state is JobState.REJECTED:
            if not any(
                job.failure_reason and job.failure_reason in m.content
                for m in discord.fake.all_messages()
                if m.ephemeral
            ):
                problems.append(f"{where}: the member was never told it was refused")
        else:
            problems.append(f"{where}: no card and no DM: the member was never told")
    promised = [m for m in discord.private_answers(job) if PROMISE in m.content]
    if promised and not dms:
        problems.append(f"{where}: the member was told {PROMISE!r} and got no DM")


def check_ledger(
    jobs: list[Job],
    ledger: list[LedgerEntry],
    usage: dict[tuple[int, int], Any],
    report: Report,
    problems: list[str],
) -> None:
    by_job: dict[int, list[LedgerEntry]] = defaultdict(list)
    for entry in ledger:
        if entry.job_id is not None:
            by_job[entry.job_id].append(entry)
        if entry.kind == "hold":
            report.credits_held += entry.amount
        elif entry.kind == "commit":
            report.credits_charged += entry.amount
        elif entry.kind == "release":
            report.credits_returned += entry.amount
    known = {j.id for j in jobs}
    for job_id in sorted(set(by_job) - known):
        problems.append(f"ledger rows for job #{job_id}, which does not exist")

    charged: Counter[tuple[int, int]] = Counter()
    for job in jobs:
        where = f"job #{job.id} ({job.state.value})"
        rows = by_job.get(job.id, [])
        holds = [r for r in rows if r.kind == "hold"]
        settles = [r for r in rows if r.kind in ("commit", "release")]
        if not holds:
            problems.append(f"{where}: no hold in the ledger")
        if sum(h.amount for h in holds) != job.price:
            problems.append(
                f"{where}: holds {sum(h.amount for h in holds)} for a price of {job.price}"
            )
        for hold in holds:
            mirror = [s for s in settles if s.pool == hold.pool]
            if len(mirror) != 1:
                kinds = [s.kind for s in mirror]
                problems.append(
                    f"{where}: its {hold.pool} hold has {len(mirror)} settlements {kinds}"
                )
            elif mirror[0].amount != hold.amount:
                problems.append(
                    f"{where}: {hold.pool} hold of {hold.amount} settled as {mirror[0].amount}"
                )
        if len([h for h in holds if h.pool]) != len({h.pool for h in holds}):
            problems.append(f"{where}: more than one hold in a pool")
        extra = [s for s in settles if s.pool not in {h.pool for h in holds}]
        if extra:
            problems.append(f"{where}: settlements without a hold: {[s.kind for s in extra]}")
        if job.state.is_terminal:
            wanted = "commit" if job.state in CHARGED else "release"
            wrong = sorted({s.kind for s in settles} - {wanted})
            if wrong:
                problems.append(f"{where}: holds settled by {wrong}, should be {wanted}")
        if job.state in CHARGED:
            charged[(job.guild_id, job.user_id)] += job.price
    for member, sums in usage.items():
        who = f"member {member[1]} in guild {member[0]}"
        if sums.held_anytime:
            problems.append(f"{who}: {sums.held_anytime} credits still held")
        committed = sums.period_committed + sums.bonus_committed
        if committed != charged[member]:
            problems.append(f"{who}: charged {committed}, but their videos cost {charged[member]}")
