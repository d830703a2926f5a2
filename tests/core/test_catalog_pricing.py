"""The catalog describes each model once; one function prices a video."""

from __future__ import annotations

from typing import Any

import pytest

from bot.api import Q3ImageToVideoRequest, Q3TurboImageToVideoRequest, VideoRequest
from bot.api.endpoints import endpoint_at
from bot.core.catalog import CATALOG, get_model, models_of_kind, request_of
from bot.core.pricing import default_price, price_credits, price_of, price_per_second
from bot.settings import Settings


def settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, discord_token="x", novita_simulate=True, **overrides)


def test_catalog_entries() -> None:
    assert set(CATALOG) == {"vidu-q3-pro-i2v", "vidu-q3-turbo-i2v", "vidu-q2-reference2video"}
    for name, spec in CATALOG.items():
        assert spec.name == name
        assert spec.path == f"/v3/async/{name}"
        assert issubclass(spec.request_model, VideoRequest)
        assert set(spec.price_per_second) == {"540p", "720p", "1080p"}
        assert endpoint_at(spec.path) is spec.endpoint
    turbo = get_model("vidu-q3-turbo-i2v")
    assert turbo.request_model is Q3TurboImageToVideoRequest
    assert issubclass(turbo.request_model, Q3ImageToVideoRequest)
    assert "audio_type" in turbo.inputs and "audio_type" not in get_model("vidu-q3-pro-i2v").inputs
    assert dict(turbo.price_per_second) == {"540p": 2, "720p": 3, "1080p": 4}
    assert get_model("vidu-q2-reference2video").max_duration == 10
    assert [s.name for s in models_of_kind("reference-to-video")] == ["vidu-q2-reference2video"]
    assert len(models_of_kind("image-to-video")) == 2
    with pytest.raises(TypeError):
        turbo.price_per_second["540p"] = 0  # type: ignore[index]


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown video model 'vidu-x'; known models: vidu-q2"):
        get_model("vidu-x")


@pytest.mark.parametrize(
    ("model", "resolution", "seconds", "off_peak", "expected"),
    [
        ("vidu-q3-pro-i2v", "540p", 5, False, 20),
        ("vidu-q3-pro-i2v", "720p", 5, False, 30),
        ("vidu-q3-pro-i2v", "1080p", 16, False, 128),
        ("vidu-q3-pro-i2v", "720p", 5, True, 15),
        ("vidu-q3-pro-i2v", "540p", 1, True, 2),
        ("vidu-q3-turbo-i2v", "720p", 3, True, 5),  # 9 × 50 % = 4.5 → 5 (rounded up)
        ("vidu-q3-turbo-i2v", "1080p", 10, False, 40),
        ("vidu-q2-reference2video", "1080p", 10, False, 80),
        ("vidu-q2-reference2video", "720p", 4, True, 24),  # Q2 has no off-peak: no discount
    ],
)
def test_prices_from_the_catalog(
    model: str, resolution: str, seconds: int, off_peak: bool, expected: int
) -> None:
    assert price_credits(model, resolution, seconds, off_peak, settings()) == expected


def test_price_table_and_discount_come_from_settings() -> None:
    custom = settings(price_table={"vidu-q3-pro-i2v": {"720p": 10}}, off_peak_discount_percent=30)
    assert price_per_second("vidu-q3-pro-i2v", "720p", custom) == 10
    assert price_per_second("vidu-q3-pro-i2v", "540p", custom) == 4  # not overridden
    assert price_per_second("vidu-q3-turbo-i2v", "720p", custom) == 3
    assert price_credits("vidu-q3-pro-i2v", "720p", 3, True, custom) == 21  # ceil(30 × 0.7)
    assert price_credits("vidu-q3-pro-i2v", "540p", 3, True, custom) == 9  # ceil(12 × 0.7) = 9
    assert price_credits("vidu-q3-pro-i2v", "720p", 0, False, custom) == 0
    free = settings(off_peak_discount_percent=100)
    assert price_credits("vidu-q3-pro-i2v", "720p", 5, True, free) == 0


def test_price_errors() -> None:
    with pytest.raises(ValueError, match="no price for resolution '4k'"):
        price_credits("vidu-q3-pro-i2v", "4k", 5, False, settings())
    with pytest.raises(ValueError, match="negative"):
        price_credits("vidu-q3-pro-i2v", "720p", -1, False, settings())
    with pytest.raises(ValueError, match="unknown video model"):
        price_credits("nope", "720p", 5, False, settings())


def test_price_of_a_request_uses_the_model_defaults() -> None:
    s = settings()
    image = ["https://x.test/a.png"]

    def q3(model: str = "vidu-q3-pro-i2v", **body: Any) -> int:
        return price_of(model, request_of(model, {"images": image, **body}), s)

    assert q3() == 30  # 720p × 5 s
    assert q3(duration=8, resolution="1080p") == 64
    assert q3(duration=8, off_peak=True) == 24
    assert q3("vidu-q3-turbo-i2v", duration=2) == 6
    subjects = [{"id": "1", "images": image}]
    q2 = request_of("vidu-q2-reference2video", {"prompt": "@1", "subjects": subjects})
    assert price_of("vidu-q2-reference2video", q2, s) == 30
    assert default_price("vidu-q3-pro-i2v", s) == 30
    assert default_price("vidu-q3-turbo-i2v", s) == 15
