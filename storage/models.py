"""Typed records that go into and come out of the database.

These are plain data: no SQL here (that is `storage.store`) and no quota arithmetic (that is
`bot.quota`). Every datetime is timezone-aware UTC.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Period = Literal["day", "week", "month", "none"]
LedgerKind = Literal[
    "hold", "commit", "release", "grant", "set", "reset", "block", "unblock", "default"
]
LedgerPool = Literal["period", "bonus"]
InputKind = Literal["image", "audio"]
# Whether the job's public card is up: to be posted (or found again), posted, or impossible
# where the job was made (then its member is told by direct message).
CardState = Literal["pending", "posted", "none"]

SYSTEM_ACTOR = "system"


def _require_aware(value: datetime | None) -> datetime | None:
    # A naive datetime is ambiguous (local or UTC?) and has caused double resets elsewhere;
    # refuse it at the boundary rather than guessing.
    if value is not None and value.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware (UTC)")
    return value


class JobState(enum.StrEnum):
    SUBMITTING = "SUBMITTING"
    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    SUCCEEDED = "SUCCEEDED"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"
    LOST = "LOST"
    UNDELIVERABLE = "UNDELIVERABLE"
    EXPIRED = "EXPIRED"

    @property
    def is_active(self) -> bool:
        """The video service may still be working on it (counts against the concurrency cap)."""
        return self in ACTIVE_STATES

    @property
    def is_terminal(self) -> bool:
        """Nothing more will happen to the job."""
        return self in TERMINAL_STATES

    @property
    def is_released(self) -> bool:
        """Ended without a charge: its hold went back to the member."""
        return self in RELEASED_STATES


ACTIVE_STATES = frozenset({JobState.SUBMITTING, JobState.QUEUED, JobState.PROCESSING})
RELEASED_STATES = frozenset({JobState.FAILED, JobState.REJECTED, JobState.LOST, JobState.EXPIRED})
TERMINAL_STATES = RELEASED_STATES | {JobState.DELIVERED, JobState.UNDELIVERABLE}
# The video was made: the member is charged, and the job has a result link.
CHARGED_STATES = frozenset({JobState.SUCCEEDED, JobState.DELIVERED, JobState.UNDELIVERABLE})


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InputRef(_Record):
    """One attachment handed to the video API (by URL) and described for history."""

    kind: InputKind
    url: str
    filename: str = ""
    content_type: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    subject: int | None = None
    attachment_id: int | None = None


class Job(_Record):
    id: int
    guild_id: int
    channel_id: int
    user_id: int
    model: str
    params: dict[str, Any]
    inputs: list[InputRef] = Field(default_factory=list)
    price: int
    off_peak: bool = False
    state: JobState
    task_id: str | None = None
    progress: int = 0
    eta: int | None = None
    next_poll_at: datetime | None = None
    attempts: int = 0
    card_message_id: int | None = None
    card_state: CardState = "posted"
    card_stale: bool = False  # its state changed and the member has not been shown it yet
    result_url: str | None = None
    result_expires_at: datetime | None = None
    failure_reason: str | None = None
    delivered_message_id: int | None = None
    reroll_of: int | None = None
    delivery_uncertain_at: datetime | None = None  # a post broke off then: it may have landed
    read_state: dict[str, Any] = Field(default_factory=dict)  # the read schedule's memory
    read_priority: int = 1  # 0: likely done at its next read (read first when short)
    expected_at: datetime | None = None  # the best guess of its end, for the card
    give_up_at: datetime | None = None  # given up (credits returned) if not ended by then
    bucket: str | None = None
    webhook_token: str | None = None
    webhook_at: datetime | None = None  # when a webhook last named it (None: none came)
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None

    @field_validator(
        "next_poll_at",
        "result_expires_at",
        "delivery_uncertain_at",
        "expected_at",
        "give_up_at",
        "webhook_at",
        "created_at",
        "updated_at",
        "finished_at",
    )
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return _require_aware(value)


class NewJob(_Record):
    """What the job service knows before the job has an id."""

    guild_id: int
    channel_id: int
    user_id: int
    model: str
    params: dict[str, Any]
    inputs: list[InputRef] = Field(default_factory=list)
    price: int = Field(ge=0)
    off_peak: bool = False
    reroll_of: int | None = None
    failure_reason: str | None = None
    card_state: CardState = "pending"
    bucket: str | None = None  # what durations are learned by: model|resolution|off-peak|seconds
    give_up_at: datetime | None = None  # given up if not confirmed by then
    webhook_token: str | None = None  # the job's webhook address ends with it
    lease_owner: str | None = None  # the process submitting it, until `lease_until`
    lease_until: datetime | None = None

    @field_validator("give_up_at", "lease_until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return _require_aware(value)


class LedgerEntry(_Record):
    id: int
    guild_id: int
    user_id: int | None
    job_id: int | None
    kind: LedgerKind
    pool: LedgerPool | None
    amount: int
    actor: str
    reason: str
    created_at: datetime

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return _require_aware(value)


class LedgerPage(_Record):
    entries: list[LedgerEntry]
    page: int
    pages: int
    total: int = 0


class GuildDefaults(_Record):
    """The operator's defaults (from settings) for a guild that never changed its own."""

    allowance: int = Field(ge=0)
    period: Period
    max_concurrent: int = Field(ge=1)


class GuildSettings(_Record):
    guild_id: int
    allowance: int = Field(ge=0)
    period: Period
    max_concurrent: int = Field(ge=1)
    allowed_channels: list[int] = Field(default_factory=list)  # empty: every channel
    enabled_models: list[str] | None = None  # None: every model in the catalog
    daily_cap: int | None = Field(default=None, ge=0)
    # Allowances per period of roles (role id → credits), instead of `allowance`, for
    # members holding them; the largest of a member's roles counts.
    role_allowances: dict[int, int] = Field(default_factory=dict)


class MemberQuota(_Record):
    """A member's settings (not balances): the allowance override and the block flag.

    `allowance` None with `unlimited` False means "the guild default".
    """

    guild_id: int
    user_id: int
    allowance: int | None = Field(default=None, ge=0)
    unlimited: bool = False
    blocked: bool = False


class MemberUsage(_Record):
    """Raw sums read from the ledger for one member; `bot.quota` turns them into a Balance.

    The period sums only count holds placed since the start of the current period (and
    what resets since then excused); the bonus sums are over all time. `held_anytime` is
    every hold not yet settled, whenever placed: what running jobs will cost if they succeed.
    """

    held_anytime: int = 0
    period_held: int = 0
    period_committed: int = 0
    period_reset: int = 0  # excused by resets
    bonus_granted: int = 0
    bonus_held: int = 0
    bonus_committed: int = 0


AllowanceSource = Literal["member", "role", "server"]


class Balance(_Record):
    allowance: int | None  # None: unlimited
    # Where the allowance comes from: the member's own setting, a role (`role_id`), or the
    # server default.
    allowance_source: AllowanceSource = "server"
    allowance_role_id: int | None = None
    blocked: bool
    period: Period
    used: int  # committed + held in this period, after resets
    held: int  # held (both pools): charged only if those jobs succeed
    bonus: int  # bonus credits not yet used
    available: int | None  # None: unlimited
    resets_at: datetime | None

    @field_validator("resets_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return _require_aware(value)
