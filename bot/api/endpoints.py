"""The video endpoints the client knows: each one's path and the body it takes.

This is the API's own knowledge (which path takes which body). What the bot offers members
(labels, prices, which inputs a command shows) is the catalog's business and lives there.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.api.models import (
    Q2ReferenceToVideoRequest,
    Q3ImageToVideoRequest,
    Q3TurboImageToVideoRequest,
    VideoRequest,
)

ASYNC_PREFIX = "/v3/async/"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One asynchronous video endpoint: `POST /v3/async/<name>` with a `request_model` body."""

    name: str
    request_model: type[VideoRequest]

    @property
    def path(self) -> str:
        return ASYNC_PREFIX + self.name


Q3_PRO_I2V = Endpoint("vidu-q3-pro-i2v", Q3ImageToVideoRequest)
Q3_TURBO_I2V = Endpoint("vidu-q3-turbo-i2v", Q3TurboImageToVideoRequest)
Q2_REFERENCE2VIDEO = Endpoint("vidu-q2-reference2video", Q2ReferenceToVideoRequest)

ENDPOINTS: dict[str, Endpoint] = {
    endpoint.path: endpoint for endpoint in (Q3_PRO_I2V, Q3_TURBO_I2V, Q2_REFERENCE2VIDEO)
}


def endpoint_at(path: str) -> Endpoint | None:
    """The endpoint served at `path`, if the client knows one there."""
    return ENDPOINTS.get(path)
