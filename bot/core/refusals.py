"""Why the core says no: each refusal is a typed code plus the facts behind it.

The core never words a refusal. A front end turns each one into words for its members
(`bot.discord.wording` for Discord), so the same refusal can read differently on another
platform, and tests check the facts rather than sentences.

Raising a refusal changes nothing: every check runs before anything is written or spent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal


class RefusalCode(enum.StrEnum):
    MODEL_UNKNOWN = "model_unknown"
    MODEL_DISABLED = "model_disabled"
    CHANNEL_NOT_ALLOWED = "channel_not_allowed"
    BLOCKED = "blocked"
    TOO_MANY_JOBS = "too_many_jobs"
    NOT_ENOUGH_CREDITS = "not_enough_credits"
    GUILD_CAP = "guild_cap"
    OPERATOR_CAP = "operator_cap"
    INVALID_REQUEST = "invalid_request"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    REROLL_BUSY = "reroll_busy"
    INPUTS_GONE = "inputs_gone"
    BAD_IMAGE = "bad_image"
    BAD_AUDIO = "bad_audio"
    BAD_PROMPT = "bad_prompt"
    BAD_VOICES = "bad_voices"


@dataclass(eq=False)
class Refusal(Exception):
    """Base of every refusal; `code` names the kind, the fields carry the facts."""

    code: ClassVar[RefusalCode]

    def __post_init__(self) -> None:
        # str(refusal) is for logs: the code and the facts, never a sentence for members.
        super().__init__(f"{self.code}: {self.__dict__}")


# --- submitting ------------------------------------------------------------------------------


@dataclass(eq=False)
class UnknownModel(Refusal):
    code = RefusalCode.MODEL_UNKNOWN
    model: str
    known: tuple[str, ...]


@dataclass(eq=False)
class ModelDisabled(Refusal):
    code = RefusalCode.MODEL_DISABLED
    model: str
    enabled: tuple[str, ...]  # what the member may choose instead (may be empty)


@dataclass(eq=False)
class ChannelNotAllowed(Refusal):
    code = RefusalCode.CHANNEL_NOT_ALLOWED
    allowed_channels: tuple[int, ...]


@dataclass(eq=False)
class Blocked(Refusal):
    code = RefusalCode.BLOCKED


@dataclass(eq=False)
class TooManyJobs(Refusal):
    code = RefusalCode.TOO_MANY_JOBS
    running: int
    limit: int


@dataclass(eq=False)
class NotEnoughCredits(Refusal):
    code = RefusalCode.NOT_ENOUGH_CREDITS
    price: int
    available: int
    resets_at: datetime | None  # when the allowance renews; None: it never does


@dataclass(eq=False)
class GuildCapReached(Refusal):
    code = RefusalCode.GUILD_CAP
    cap: int
    left: int
    price: int
    resets_at: datetime


@dataclass(eq=False)
class OperatorCapReached(Refusal):
    code = RefusalCode.OPERATOR_CAP
    price: int
    resets_at: datetime


@dataclass(eq=False)
class InvalidRequest(Refusal):
    """A request the video API would refuse; `detail` names the option and what is allowed
    (written by the request models, e.g. "duration must be … from 1 to 16 (you gave 20)")."""

    code = RefusalCode.INVALID_REQUEST
    detail: str


@dataclass(eq=False)
class JobNotFound(Refusal):
    """No such job here (for `of_member`: none of the asking member's)."""

    code = RefusalCode.NOT_FOUND
    job_id: int
    of_member: bool = True


@dataclass(eq=False)
class RerollBusy(Refusal):
    """The same member's re-roll of the same job is already being submitted (a double click)."""

    code = RefusalCode.REROLL_BUSY
    job_id: int


@dataclass(eq=False)
class InputsGone(Refusal):
    """A job's input files are no longer stored where they were, so it cannot be re-rolled."""

    code = RefusalCode.INPUTS_GONE
    job_id: int


# --- moderation ------------------------------------------------------------------------------


@dataclass(eq=False)
class OutOfRange(Refusal):
    """A number outside what the option allows; `low`/`high` None: unbounded on that side."""

    code = RefusalCode.INVALID_REQUEST
    option: str
    low: int | None
    high: int | None


@dataclass(eq=False)
class NotOneOf(Refusal):
    code = RefusalCode.INVALID_REQUEST
    option: str
    choices: tuple[str, ...]


@dataclass(eq=False)
class NoBonusToTake(Refusal):
    code = RefusalCode.INVALID_REQUEST


@dataclass(eq=False)
class NoModelLeft(Refusal):
    """Every model would be turned off."""

    code = RefusalCode.INVALID_REQUEST


@dataclass(eq=False)
class NoRoleAllowance(Refusal):
    """The role has no allowance of its own to remove."""

    code = RefusalCode.NOT_FOUND
    role_id: int


@dataclass(eq=False)
class SettingsChanged(Refusal):
    """Another moderator changed the settings between reading and writing them."""

    code = RefusalCode.CONFLICT


# --- inputs (checked before anything is sent) ------------------------------------------------

ImageProblem = Literal["type", "too_big", "no_size", "too_small", "too_thin"]
VoiceProblem = Literal["unreadable", "not_attached", "twice"]


@dataclass(eq=False)
class BadImage(Refusal):
    code = RefusalCode.BAD_IMAGE
    option: str
    filename: str
    problem: ImageProblem
    content_type: str = ""
    size: int = 0
    width: int = 0
    height: int = 0


@dataclass(eq=False)
class BadAudio(Refusal):
    code = RefusalCode.BAD_AUDIO
    option: str
    filename: str
    problem: Literal["type", "too_big"]
    content_type: str = ""
    size: int = 0


@dataclass(eq=False)
class UnknownSubjects(Refusal):
    """The prompt names `@N` for subjects that are not attached."""

    code = RefusalCode.BAD_PROMPT
    missing: tuple[int, ...]


@dataclass(eq=False)
class BadVoices(Refusal):
    code = RefusalCode.BAD_VOICES
    problem: VoiceProblem
    text: str = ""  # the piece that could not be read
    subject: int = 0
