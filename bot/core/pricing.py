"""The one price function: credits for a video, from the configured table or the catalog."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.api.models import Q3ImageToVideoRequest
from bot.core.catalog import JobRequest, get_model

if TYPE_CHECKING:
    from bot.settings import Settings


def price_per_second(model: str, resolution: str, settings: Settings) -> int:
    """Credits per second of `model` at `resolution`: the settings' table, else the catalog."""
    spec = get_model(model)
    override = settings.price_table.get(model, {})
    if resolution in override:
        return override[resolution]
    try:
        return spec.price_per_second[resolution]
    except KeyError:
        known = ", ".join(spec.price_per_second)
        raise ValueError(
            f"{model} has no price for resolution {resolution!r}; known: {known}"
        ) from None


def price_credits(
    model: str, resolution: str, seconds: int, off_peak: bool, settings: Settings
) -> int:
    """Credits a video costs: per-second price × seconds, less the off-peak discount.

    The discount rounds in the operator's favour (`ceil`), and applies only to models that
    offer off-peak processing: a flag the model ignores must not make the video cheaper.
    """
    if seconds < 0:
        raise ValueError("seconds cannot be negative")
    base = price_per_second(model, resolution, settings) * seconds
    if off_peak and "off_peak" in get_model(model).inputs:
        percent = settings.off_peak_discount_percent
        return -(-base * (100 - percent) // 100)  # ceil without floats
    return base


def price_of(model: str, request: JobRequest, settings: Settings) -> int:
    """The price of a validated request (its model's defaults fill what the member left out)."""
    off_peak = isinstance(request, Q3ImageToVideoRequest) and request.off_peak
    return price_credits(model, request.resolution, request.duration, off_peak, settings)


def default_price(model: str, settings: Settings) -> int:
    """The price of a video with every option left at the model's default."""
    fields = get_model(model).request_model.model_fields
    resolution, duration = fields["resolution"].default, fields["duration"].default
    return price_credits(model, str(resolution), int(duration), False, settings)
