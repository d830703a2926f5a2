"""Errors of the video API client, each with words a Discord member understands.

`str(error)` is for logs and operators; `error.member_message` is what a member is shown.
Neither ever contains the API key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

GENERIC_MEMBER_MESSAGE = "The video service had a problem. Try again in a few minutes."
OPERATOR_MEMBER_MESSAGE = (
    "The bot's video service account has a problem. Please tell the bot's operator."
)

# Words for members, by the `reason` of the error body.
REASON_MEMBER_MESSAGES: dict[str, str] = {
    "INVALID_REQUEST_BODY": "The video service did not accept the settings of this request.",
    "IMAGE_FILE_EXCEEDS_MAX_SIZE": "The image is too large for the video service (50 MB at most).",
    "INVALID_IMAGE_FORMAT": "The video service cannot read this image. Use a JPG, PNG or WebP file.",
    "IMAGE_EXCEEDS_MAX_RESOLUTION": (
        "The image has too many pixels for the video service. Use a smaller image."
    ),
    "INVALID_IMAGE_SIZE": (
        "The image's size or shape is not accepted: it must be at least 128×128 pixels and at "
        "most four times as wide as tall (or as tall as wide)."
    ),
    "ILLEGAL_PROMPT": (
        "The video service refused the prompt (content policy). Change the wording and try again."
    ),
    "ILLEGAL_IMAGE_CONTENT": (
        "The video service refused the image (content policy). Try a different image."
    ),
    "INVALID_AUDIO_FILE": (
        "The video service cannot use this audio file. Use an MP3, WAV, M4A or FLAC file of at "
        "most 20 MB."
    ),
    "BILLING_BALANCE_NOT_ENOUGH": (
        "The bot's video service account has run out of funds. Please tell the bot's operator."
    ),
    "MISSING_API_KEY": OPERATOR_MEMBER_MESSAGE,
    "FAILED_TO_AUTH": OPERATOR_MEMBER_MESSAGE,
    "INVALID_API_KEY": OPERATOR_MEMBER_MESSAGE,
    "BILLING_AUTH_FAILED": OPERATOR_MEMBER_MESSAGE,
    "FEATURE_NOT_ALLOWED": (
        "The bot's video service account may not use this model. Please tell the bot's operator."
    ),
    "API_NOT_ALLOWED": (
        "The bot's video service account may not use this model. Please tell the bot's operator."
    ),
    "API_NOT_FOUND": "The video service does not offer this model right now.",
    "TASK_NOT_FOUND": "The video service no longer knows this video job.",
    "RATE_LIMIT_EXCEEDED": "The video service is busy right now. Try again in a minute.",
    "BILLING_FAILED": GENERIC_MEMBER_MESSAGE,
    "CREATE_TASK_FAILED": GENERIC_MEMBER_MESSAGE,
    "GET_RESULT_FAILED": GENERIC_MEMBER_MESSAGE,
    "TASK_FAILED": "The video service could not make this video.",
    "SERVICE_NOT_AVAILABLE": "The video service is not available right now. Try again later.",
}

CONTENT_POLICY_REASONS = frozenset({"ILLEGAL_PROMPT", "ILLEGAL_IMAGE_CONTENT"})
AUTH_REASONS = frozenset({"MISSING_API_KEY", "FAILED_TO_AUTH", "INVALID_API_KEY"})


class VideoAPIError(Exception):
    """Base of every error of the video API client."""

    default_member_message: str = GENERIC_MEMBER_MESSAGE

    def __init__(self, message: str, *, member_message: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.member_message = member_message or self.default_member_message


class APIStatusError(VideoAPIError):
    """The service answered with an error status (and, usually, its documented error body)."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        metadata: Mapping[str, Any] | None = None,
        *,
        method: str = "",
        path: str = "",
        member_message: str | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.method = method
        self.path = path
        text = f"{method} {path} → HTTP {status} {reason or '(no reason)'}: {message}".strip()
        super().__init__(
            text,
            member_message=member_message or REASON_MEMBER_MESSAGES.get(reason),
        )
        # Keep the service's own words separately from the formatted text.
        self.message = message


class BadRequestError(APIStatusError):
    """400: the service refused the request; sending it again changes nothing."""

    default_member_message = "The video service did not accept this request."


class ContentPolicyError(BadRequestError):
    """400 ILLEGAL_PROMPT / ILLEGAL_IMAGE_CONTENT: refused by the service's moderation."""


class InsufficientBalanceError(BadRequestError):
    """400 BILLING_BALANCE_NOT_ENOUGH: the operator's account needs money."""


class AuthenticationError(APIStatusError):
    """401/403 (and 400 MISSING_API_KEY): the key is missing, wrong or not allowed this API."""

    default_member_message = OPERATOR_MEMBER_MESSAGE


class NotFoundError(APIStatusError):
    """404: no such endpoint or task."""

    default_member_message = "The video service does not know this request."


class TaskNotFoundError(NotFoundError):
    """404 TASK_NOT_FOUND: the service does not know (or no longer knows) the task id."""


class RateLimitError(APIStatusError):
    """429: too many requests; `retry_after` is the wait the service asked for, in seconds."""

    default_member_message = REASON_MEMBER_MESSAGES["RATE_LIMIT_EXCEEDED"]

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx: the service failed; a read may be tried again, a submission may not."""

    default_member_message = GENERIC_MEMBER_MESSAGE


class APIConnectionError(VideoAPIError):
    """The service could not be reached, or the connection broke."""

    default_member_message = (
        "The bot could not reach the video service. Try again in a few minutes."
    )


class APITimeoutError(APIConnectionError):
    """The service did not answer in time."""

    default_member_message = "The video service did not answer in time. Try again in a few minutes."


class MalformedResponseError(VideoAPIError):
    """A successful answer whose body is not the documented JSON (HTML from a proxy, empty…)."""

    default_member_message = (
        "The video service sent an answer the bot could not read. Try again in a few minutes."
    )

    def __init__(self, message: str, *, status: int, body_excerpt: str = "") -> None:
        super().__init__(f"{message} (HTTP {status}; body starts {body_excerpt!r})")
        self.status = status
        self.body_excerpt = body_excerpt


class SubmissionOutcomeUnknown(VideoAPIError):
    """A submission timed out, broke off or got a 5xx: the task may exist and may be charged.

    It is never retried automatically; `cause` is the error that made the outcome unknown.
    """

    default_member_message = (
        "The video service did not confirm whether it started your video. The bot did not send "
        "it again, so it cannot be made (or charged) twice."
    )

    def __init__(self, message: str, *, cause: VideoAPIError) -> None:
        super().__init__(message)
        self.cause = cause


class DownloadError(VideoAPIError):
    """The finished video could not be fetched (e.g. its signed link expired)."""

    default_member_message = (
        "The finished video could not be fetched from the video service; its link may have expired."
    )

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DownloadTooLargeError(DownloadError):
    """The video is larger than the byte cap; the download stopped and the partial file is gone."""

    default_member_message = "The finished video is too large for the bot to fetch."

    def __init__(self, limit: int, received: int, *, announced: int | None = None) -> None:
        detail = (
            f"announced {announced} bytes" if announced is not None else f"stopped after {received}"
        )
        super().__init__(f"the video is larger than {limit} bytes ({detail})")
        self.limit = limit
        self.received = received
        self.announced = announced


def _excerpt(body: bytes, limit: int = 120) -> str:
    return body[:limit].decode("utf-8", errors="replace")


def parse_json_body(body: bytes) -> Any:
    """The decoded JSON of `body`, or None if it is not JSON."""
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def error_from_response(
    status: int,
    body: bytes,
    *,
    method: str,
    path: str,
    retry_after: float | None = None,
) -> APIStatusError:
    """The typed error for an error answer, built from the documented error body.

    An error body that is not the documented JSON (a proxy's HTML page) still yields the
    class its status calls for: the status is what says whether trying again may help.
    """
    data = parse_json_body(body)
    if isinstance(data, dict) and isinstance(data.get("reason", ""), str):
        reason = str(data.get("reason") or "")
        message = str(data.get("message") or "")
        metadata = data.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
    else:
        reason = ""
        message = f"the error body is not the documented JSON: {_excerpt(body)!r}"
        metadata = {}

    cls: type[APIStatusError]
    if (status == 400 and reason in AUTH_REASONS) or status in (401, 403):
        cls = AuthenticationError
    elif status == 400 and reason in CONTENT_POLICY_REASONS:
        cls = ContentPolicyError
    elif status == 400 and reason == "BILLING_BALANCE_NOT_ENOUGH":
        cls = InsufficientBalanceError
    elif status == 400:
        cls = BadRequestError
    elif status == 404 and reason == "TASK_NOT_FOUND":
        cls = TaskNotFoundError
    elif status == 404:
        cls = NotFoundError
    elif status == 429:
        return RateLimitError(
            status, reason, message, metadata, method=method, path=path, retry_after=retry_after
        )
    elif status >= 500:
        cls = ServerError
    else:
        cls = APIStatusError
    member_message = None
    if cls is BadRequestError and reason == "INVALID_REQUEST_BODY" and message:
        # The service's own explanation names the setting it disliked; short ones help.
        short = message if len(message) <= 200 else message[:197] + "…"
        member_message = f"The video service did not accept the settings of this request: {short}"
    return cls(
        status, reason, message, metadata, method=method, path=path, member_message=member_message
    )
