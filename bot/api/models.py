"""Request and response models of the Vidu endpoints of the Novita AI API.

Requests are strict: every documented range and choice is checked before anything is sent,
so a member learns what to change without spending a request (or money). Responses are
lenient: the service adds fields and varies types (`video_url_ttl` is a string in most
documents, an integer in some), and a poller that crashes on a new field loses videos.
"""

from __future__ import annotations

import logging
import re
import typing
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

log = logging.getLogger(__name__)

# --- Documented limits ---------------------------------------------------------------------

PROMPT_MAX_CHARS = 1500
SEED_MAX = 2_147_483_647
Q3_MAX_DURATION = 16
Q2_MAX_DURATION = 10
Q2_MAX_SUBJECTS = 7
Q2_MAX_IMAGES_PER_SUBJECT = 3
Q2_MAX_IMAGES_TOTAL = 7

IMAGE_CONTENT_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
IMAGE_MAX_BYTES = 50 * 1024 * 1024
IMAGE_MIN_SIDE = 128
IMAGE_MAX_ASPECT = 4.0
AUDIO_CONTENT_TYPES = frozenset(
    {
        "audio/mpeg",
        "audio/mp3",
        "audio/wav",
        "audio/x-wav",
        "audio/wave",
        "audio/vnd.wave",
        "audio/mp4",
        "audio/x-m4a",
        "audio/m4a",
        "audio/flac",
        "audio/x-flac",
    }
)
AUDIO_MAX_BYTES = 20 * 1024 * 1024

Resolution = Literal["540p", "720p", "1080p"]
AspectRatio = Literal["16:9", "9:16", "4:3", "3:4", "1:1"]
Style = Literal["general", "anime"]
Movement = Literal["auto", "small", "medium", "high"]
RESOLUTIONS: tuple[str, ...] = typing.get_args(Resolution)
ASPECT_RATIOS: tuple[str, ...] = typing.get_args(AspectRatio)
STYLES: tuple[str, ...] = typing.get_args(Style)
MOVEMENTS: tuple[str, ...] = typing.get_args(Movement)


class RequestValidationError(ValueError):
    """A request that the documented API would refuse; `message` is fit for a member."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return value


HttpUrlStr = Annotated[str, AfterValidator(_http_url)]


class _Strict(BaseModel):
    # strict: no silent coercion ("5" → 5, 1 → True); forbid: a misspelt option is an error,
    # not a setting quietly dropped.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class VideoRequest(_Strict):
    """Base of every request model; a subclass describes one endpoint's JSON body."""

    _registry: ClassVar[dict[str, type[VideoRequest]]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        VideoRequest._registry[cls.__name__] = cls

    def to_body(self) -> dict[str, Any]:
        """The JSON body to send: every set value, None left out."""
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Self:
        """Validate `body`, raising `RequestValidationError` with a member-readable message."""
        try:
            return cls.model_validate(body)
        except ValidationError as error:
            raise RequestValidationError(
                _first_field(error), describe_validation_error(error)
            ) from None


# --- Vidu Q3 image to video ----------------------------------------------------------------


class Q3ImageToVideoRequest(VideoRequest):
    """`POST /v3/async/vidu-q3-pro-i2v`: one image becomes a video."""

    images: list[HttpUrlStr] = Field(
        min_length=1, max_length=1, description="a list with exactly one image URL"
    )
    prompt: str = Field(
        default="",
        max_length=PROMPT_MAX_CHARS,
        description=f"at most {PROMPT_MAX_CHARS} characters long",
    )
    duration: int = Field(
        default=5,
        ge=1,
        le=Q3_MAX_DURATION,
        description=f"a whole number of seconds from 1 to {Q3_MAX_DURATION}",
    )
    resolution: Resolution = Field(default="720p", description="one of 540p, 720p, 1080p")
    aspect_ratio: AspectRatio = Field(
        default="16:9", description="one of 16:9, 9:16, 4:3, 3:4, 1:1"
    )
    style: Style = Field(default="general", description="one of general, anime")
    seed: int | None = Field(
        default=None, ge=0, le=SEED_MAX, description=f"a whole number from 0 to {SEED_MAX}"
    )
    off_peak: bool = Field(default=False, description="true or false")
    audio: HttpUrlStr | None = Field(default=None, description="the URL of an audio file")
    is_rec: bool = Field(default=False, description="true or false")
    watermark: bool = Field(default=False, description="true or false")
    wm_url: HttpUrlStr | None = Field(default=None, description="the URL of a watermark image")
    wm_position: Literal["top-left", "top-right", "bottom-left", "bottom-right"] | None = Field(
        default=None, description="one of top-left, top-right, bottom-left, bottom-right"
    )


class Q3TurboImageToVideoRequest(Q3ImageToVideoRequest):
    """`POST /v3/async/vidu-q3-turbo-i2v`: the Q3 body plus the kind of audio to generate."""

    audio_type: Literal["all", "speech_only", "sound_effect_only"] | None = Field(
        default=None, description="one of all, speech_only, sound_effect_only"
    )


# --- Vidu Q2 reference to video ------------------------------------------------------------

# An `@` that starts a word, followed by digits: not the middle of an address (a@b.c) and
# not a Discord mention (<@123>), which members may paste into a prompt.
SUBJECT_MENTION = re.compile(r"(?<![\w@<])@(\d+)\b")


class Subject(_Strict):
    """One subject of a reference video: an id the prompt names as `@id`, and its images."""

    # Not documented: ids are kept to word characters because the prompt names them as @id.
    id: str = Field(
        pattern=r"^[A-Za-z0-9_-]{1,32}$",
        description="1 to 32 letters, digits, _ or - (the prompt names it as @id)",
    )
    images: list[HttpUrlStr] = Field(
        min_length=1,
        max_length=Q2_MAX_IMAGES_PER_SUBJECT,
        description=f"a list of 1 to {Q2_MAX_IMAGES_PER_SUBJECT} image URLs",
    )
    # Empty means the service picks a voice; there is no documented listing of voices.
    voice_id: str | None = Field(default=None, max_length=128, description="a voice id")


class Q2ReferenceToVideoRequest(VideoRequest):
    """`POST /v3/async/vidu-q2-reference2video`: subjects from reference images, in a scene."""

    # Declared before `prompt` so the prompt's validator can see the subjects.
    subjects: list[Subject] = Field(
        min_length=1,
        max_length=Q2_MAX_SUBJECTS,
        description=f"a list of 1 to {Q2_MAX_SUBJECTS} subjects",
    )
    # The 1500 limit is documented for Q3 only and assumed here.
    prompt: str = Field(
        min_length=1,
        max_length=PROMPT_MAX_CHARS,
        description=f"a text of 1 to {PROMPT_MAX_CHARS} characters",
    )
    duration: int = Field(
        default=5,
        ge=1,
        le=Q2_MAX_DURATION,
        description=f"a whole number of seconds from 1 to {Q2_MAX_DURATION}",
    )
    resolution: Resolution = Field(default="720p", description="one of 540p, 720p, 1080p")
    aspect_ratio: AspectRatio | None = Field(
        default=None, description="one of 16:9, 9:16, 1:1, 4:3, 3:4"
    )
    movement_amplitude: Movement | None = Field(
        default=None, description="one of auto, small, medium, high"
    )
    bgm: bool = Field(default=False, description="true or false")
    audio: bool = Field(default=False, description="true or false")
    watermark: bool = Field(default=False, description="true or false")
    # The seed range is documented for Q3 only and assumed here.
    seed: int | None = Field(
        default=None, ge=0, le=SEED_MAX, description=f"a whole number from 0 to {SEED_MAX}"
    )

    @field_validator("subjects")
    @classmethod
    def _subjects_fit_together(cls, subjects: list[Subject]) -> list[Subject]:
        total = sum(len(subject.images) for subject in subjects)
        if total > Q2_MAX_IMAGES_TOTAL:
            raise ValueError(
                f"must have at most {Q2_MAX_IMAGES_TOTAL} images in all (these have {total})"
            )
        seen: set[str] = set()
        for subject in subjects:
            if subject.id in seen:
                raise ValueError(f"must each have their own id (id {subject.id} is used twice)")
            seen.add(subject.id)
        return subjects

    @field_validator("prompt")
    @classmethod
    def _prompt_names_known_subjects(cls, prompt: str, info: ValidationInfo) -> str:
        if not prompt.strip():
            raise ValueError("must not be empty")
        subjects: list[Subject] | None = info.data.get("subjects")
        if subjects is None:  # the subjects are invalid themselves; that error is reported
            return prompt
        ids = {subject.id for subject in subjects}
        unknown = sorted({m for m in SUBJECT_MENTION.findall(prompt) if m not in ids}, key=int)
        if unknown:
            mentions = ", ".join(f"@{m}" for m in unknown)
            known = ", ".join(f"@{i}" for i in sorted(ids))
            raise ValueError(f"mentions {mentions}, but the subjects are only {known}")
        return prompt


# --- Describing validation errors ----------------------------------------------------------


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def _path(loc: Iterable[int | str]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part + 1}]"
        else:
            text += f".{part}" if text else part
    return text


def _allowed(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> str | None:
    """The field's description ("what is allowed") for the last named field in `loc`."""
    description = None
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        description = field.description
        model = _nested_model(field.annotation)
    return description


def _first_field(error: ValidationError) -> str:
    errors = error.errors(include_url=False)
    return _path(errors[0]["loc"]) if errors else ""


def _shown(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and len(value) <= 40:
        return repr(value)
    return None


def describe_validation_error(error: ValidationError | RequestValidationError) -> str:
    """One sentence per problem, naming the field and what is allowed.

    E.g. "duration must be a whole number of seconds from 1 to 16 (you gave 20)".
    """
    if isinstance(error, RequestValidationError):
        return error.message
    model = VideoRequest._registry.get(error.title)
    sentences: list[str] = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        path = _path(loc) or "the request"
        kind = item["type"]
        allowed = _allowed(model, loc)
        if kind == "value_error":
            message = str(item["msg"]).removeprefix("Value error, ")
            sentence = f"{path} {message}"
        elif kind == "extra_forbidden":
            sentence = f"{path} is not an option of this model"
        elif kind == "missing":
            sentence = f"{path} is required" + (f"; it must be {allowed}" if allowed else "")
        elif kind in ("model_type", "dict_type") and not loc:
            sentence = "the request must be a JSON object"
        elif allowed is not None:
            sentence = f"{path} must be {allowed}"
            shown = _shown(item.get("input"))
            if shown is not None and kind not in ("too_long", "too_short"):
                sentence += f" (you gave {shown})"
        else:
            sentence = f"{path}: {item['msg']}"
        if sentence not in sentences:
            sentences.append(sentence)
    return "; ".join(sentences) or "the request is not valid"


# --- Checks of attachments before their URLs are sent --------------------------------------


# --- Responses -----------------------------------------------------------------------------


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SubmitResponse(_Lenient):
    task_id: str = Field(min_length=1)


class TaskStatus(StrEnum):
    QUEUED = "TASK_STATUS_QUEUED"
    PROCESSING = "TASK_STATUS_PROCESSING"
    SUCCEED = "TASK_STATUS_SUCCEED"
    FAILED = "TASK_STATUS_FAILED"

    @property
    def is_terminal(self) -> bool:
        return self in (TaskStatus.SUCCEED, TaskStatus.FAILED)


def _optional_int(value: Any) -> int | None:
    """A number sent as int, float or string; anything else counts as absent."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


class TaskInfo(_Lenient):
    task_id: str = ""
    task_type: str = ""
    status: TaskStatus = TaskStatus.PROCESSING
    reason: str = ""
    eta: int | None = None
    progress_percent: int | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _unknown_status_is_processing(cls, value: Any) -> Any:
        # A status we do not know is not terminal: keep polling rather than give up on a video.
        if value in TaskStatus._value2member_map_:
            return value
        log.warning("unknown task status %r; treating it as processing", value)
        return TaskStatus.PROCESSING

    @field_validator("reason", "task_id", "task_type", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return "" if value is None else str(value)

    @field_validator("eta", mode="before")
    @classmethod
    def _eta(cls, value: Any) -> int | None:
        number = _optional_int(value)
        return None if number is None else max(number, 0)

    @field_validator("progress_percent", mode="before")
    @classmethod
    def _progress(cls, value: Any) -> int | None:
        number = _optional_int(value)
        return None if number is None else min(max(number, 0), 100)


class VideoOutput(_Lenient):
    video_url: str
    # Seconds the signed URL stays valid; 0 when the service sent "0", nothing or nonsense.
    video_url_ttl: int = 0
    video_type: str = "mp4"

    @field_validator("video_url_ttl", mode="before")
    @classmethod
    def _ttl(cls, value: Any) -> int:
        number = _optional_int(value)
        return 0 if number is None else max(number, 0)

    @field_validator("video_type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> str:
        return "mp4" if not value else str(value)


class TaskResult(_Lenient):
    task: TaskInfo
    videos: list[VideoOutput] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("videos", mode="before")
    @classmethod
    def _videos(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("extra", mode="before")
    @classmethod
    def _extra(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else {}

    @property
    def status(self) -> TaskStatus:
        return self.task.status

    @property
    def is_terminal(self) -> bool:
        return self.task.status.is_terminal

    @property
    def succeeded(self) -> bool:
        return self.task.status is TaskStatus.SUCCEED

    @property
    def failed(self) -> bool:
        return self.task.status is TaskStatus.FAILED

    @property
    def video(self) -> VideoOutput | None:
        return self.videos[0] if self.videos else None
