"""The video models the bot offers, each described once.

Adding a model the API already serves with a known body (say `vidu-q2-text2video`) is one
entry here: its endpoint path, its request model, the inputs it takes (commands show the
options for those) and its price per second by resolution. No command code changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from bot.api.endpoints import Q2_REFERENCE2VIDEO, Q3_PRO_I2V, Q3_TURBO_I2V, Endpoint
from bot.api.models import (
    Q2_MAX_DURATION,
    Q3_MAX_DURATION,
    Q2ReferenceToVideoRequest,
    Q3ImageToVideoRequest,
    VideoRequest,
)

ModelKind = Literal["image-to-video", "reference-to-video"]
# Every request the catalog's models take (Q3 Turbo's is a Q3 request with one field more).
# The fields the bot reads of a job (prompt, duration, resolution, seed) exist on each.
JobRequest = Q3ImageToVideoRequest | Q2ReferenceToVideoRequest


@dataclass(frozen=True)
class ModelSpec:
    endpoint: Endpoint
    label: str
    kind: ModelKind
    inputs: frozenset[str]
    max_duration: int
    price_per_second: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Read-only so a caller cannot change the catalog's prices by accident.
        object.__setattr__(self, "price_per_second", MappingProxyType(dict(self.price_per_second)))

    @property
    def name(self) -> str:
        return self.endpoint.name

    @property
    def path(self) -> str:
        return self.endpoint.path

    @property
    def request_model(self) -> type[VideoRequest]:
        return self.endpoint.request_model


def _spec(
    endpoint: Endpoint,
    label: str,
    kind: ModelKind,
    inputs: set[str],
    max_duration: int,
    prices: tuple[int, int, int],
) -> ModelSpec:
    return ModelSpec(
        endpoint=endpoint,
        label=label,
        kind=kind,
        inputs=frozenset(inputs),
        max_duration=max_duration,
        price_per_second=dict(zip(("540p", "720p", "1080p"), prices, strict=True)),
    )


CATALOG: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _spec(
            Q3_PRO_I2V,
            "Vidu Q3 Pro (image to video)",
            "image-to-video",
            {"image", "audio", "off_peak", "style"},
            Q3_MAX_DURATION,
            (4, 6, 8),
        ),
        _spec(
            Q3_TURBO_I2V,
            "Vidu Q3 Turbo (image to video, faster and cheaper)",
            "image-to-video",
            {"image", "audio", "off_peak", "style", "audio_type"},
            Q3_MAX_DURATION,
            (2, 3, 4),
        ),
        _spec(
            Q2_REFERENCE2VIDEO,
            "Vidu Q2 (reference images to video)",
            "reference-to-video",
            {"subjects", "voices", "bgm", "audio", "movement"},
            Q2_MAX_DURATION,
            (4, 6, 8),
        ),
    )
}


def get_model(name: str) -> ModelSpec:
    """The catalog entry for `name`; ValueError naming the known models if there is none."""
    try:
        return CATALOG[name]
    except KeyError:
        known = ", ".join(sorted(CATALOG))
        raise ValueError(f"unknown video model {name!r}; known models: {known}") from None


def models_of_kind(kind: ModelKind) -> list[ModelSpec]:
    return [spec for spec in CATALOG.values() if spec.kind == kind]


def request_of(model: str, body: Mapping[str, Any]) -> JobRequest:
    """A stored job's request as its model: the one place a stored body is read back.

    Raises `RequestValidationError` for a body the model refuses, `ValueError` for an
    unknown model.
    """
    request = get_model(model).request_model.from_body(body)
    if not isinstance(request, Q3ImageToVideoRequest | Q2ReferenceToVideoRequest):
        raise TypeError(f"{model}: add {type(request).__name__} to JobRequest")
    return request
