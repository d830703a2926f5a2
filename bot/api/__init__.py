"""The client of the Novita AI video API (Vidu models): models, errors, rate limit, client.

The loopback simulator of this API is the separate package `bot.simulator`, built on this
package's models and endpoints; it is imported only where it is used.
"""

from __future__ import annotations

from bot.api.budget import Budget, split_budgets
from bot.api.client import (
    MAX_RETRIES,
    RETRY_AFTER_MAX,
    RETRY_BASE_DELAY,
    RETRY_JITTER,
    RETRY_MAX_DELAY,
    TASK_RESULT_PATH,
    Download,
    VideoAPI,
)
from bot.api.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContentPolicyError,
    DownloadError,
    DownloadTooLargeError,
    InsufficientBalanceError,
    MalformedResponseError,
    NotFoundError,
    RateLimitError,
    ServerError,
    SubmissionOutcomeUnknown,
    TaskNotFoundError,
    VideoAPIError,
    error_from_response,
)
from bot.api.models import (
    RESOLUTIONS,
    Q2ReferenceToVideoRequest,
    Q3ImageToVideoRequest,
    Q3TurboImageToVideoRequest,
    RequestValidationError,
    Subject,
    TaskInfo,
    TaskResult,
    TaskStatus,
    VideoOutput,
    VideoRequest,
    describe_validation_error,
)

__all__ = [
    "MAX_RETRIES",
    "RESOLUTIONS",
    "RETRY_AFTER_MAX",
    "RETRY_BASE_DELAY",
    "RETRY_JITTER",
    "RETRY_MAX_DELAY",
    "TASK_RESULT_PATH",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "Budget",
    "ContentPolicyError",
    "Download",
    "DownloadError",
    "DownloadTooLargeError",
    "InsufficientBalanceError",
    "MalformedResponseError",
    "NotFoundError",
    "Q2ReferenceToVideoRequest",
    "Q3ImageToVideoRequest",
    "Q3TurboImageToVideoRequest",
    "RateLimitError",
    "RequestValidationError",
    "ServerError",
    "Subject",
    "SubmissionOutcomeUnknown",
    "TaskInfo",
    "TaskNotFoundError",
    "TaskResult",
    "TaskStatus",
    "VideoAPI",
    "VideoAPIError",
    "VideoOutput",
    "VideoRequest",
    "describe_validation_error",
    "error_from_response",
    "split_budgets",
]
