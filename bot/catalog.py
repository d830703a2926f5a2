"""The video models the bot offers, each described once.

Adding a model the API already serves with a known body (say `vidu-q2-text2video`) is one
entry here: its endpoint path, its request model, the inputs it takes (commands show the
options for those) and its price per second by resolution. No command code changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from bot.api.models import (
    Q2_MAX_DURATION,
    Q3_MAX_DURATION,
    Q2ReferenceToVideoRequest,
    Q3ImageToVideoRequest,
    Q3TurboImageToVideoRequest,
    VideoRequest,
)

ModelKind = Literal["image-to-video", "reference-to-video"]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    label: str
    kind: ModelKind
    path: str
    request_model: type[VideoRequest]
    inputs: frozenset[str]
    max_duration: int
    price_per_second: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Read-only so a caller cannot change the catalog's prices by accident.
        object.__setattr__(self, "price_per_second", MappingProxyType(dict(self.price_per_second)))


def _spec(
    name: str,
    label: str,
    kind: ModelKind,
    request_model: type[VideoRequest],
    inputs: set[str],
    max_duration: int,
    prices: tuple[int, int, int],
) -> ModelSpec:
    return ModelSpec(
        name=name,
        label=label,
        kind=kind,
        path=f"/v3/async/{name}",
        request_model=request_model,
        inputs=frozenset(inputs),
        max_duration=max_duration,
        price_per_second=dict(zip(("540p", "720p", "1080p"), prices, strict=True)),
    )


CATALOG: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _spec(
            "vidu-q3-pro-i2v",
            "Vidu Q3 Pro (image to video)",
            "image-to-video",
            Q3ImageToVideoRequest,
            {"image", "audio", "off_peak", "style"},
            Q3_MAX_DURATION,
            (4, 6, 8),
        ),
        _spec(
            "vidu-q3-turbo-i2v",
            "Vidu Q3 Turbo (image to video, faster and cheaper)",
            "image-to-video",
            Q3TurboImageToVideoRequest,
            {"image", "audio", "off_peak", "style", "audio_type"},
            Q3_MAX_DURATION,
            (2, 3, 4),
        ),
        _spec(
            "vidu-q2-reference2video",
            "Vidu Q2 (reference images to video)",
            "reference-to-video",
            Q2ReferenceToVideoRequest,
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


def model_for_path(path: str) -> ModelSpec | None:
    """The catalog entry whose endpoint is `path` (the simulator routes by it)."""
    return next((spec for spec in CATALOG.values() if spec.path == path), None)
