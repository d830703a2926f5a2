"""Checks on what a member attaches and types, before anything is spent.

Platform-neutral: the Discord cog passes in what Discord reports about an attachment
(content type, size, width, height); every refusal is a `UserFacingError` that says what
to change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.api.models import (
    AUDIO_CONTENT_TYPES,
    AUDIO_MAX_BYTES,
    IMAGE_CONTENT_TYPES,
    IMAGE_MAX_ASPECT,
    IMAGE_MAX_BYTES,
    IMAGE_MIN_SIDE,
    SUBJECT_MENTION,
)
from bot.errors import UserFacingError

MB = 1024 * 1024
VOICE_PAIR = re.compile(r"^(\d+)\s*[=:]\s*([A-Za-z0-9_.\-]{1,64})$")


@dataclass(frozen=True, slots=True)
class AttachedFile:
    """What the platform reports about one attached file."""

    option: str  # the command option it came in, e.g. "image" or "subject2"
    filename: str
    url: str
    content_type: str | None
    size: int
    width: int | None = None
    height: int | None = None
    attachment_id: int | None = None


def _base_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def check_image(file: AttachedFile) -> None:
    """Refuse anything the video service would refuse, judged by content type, not by name."""
    kind = _base_type(file.content_type)
    if kind not in IMAGE_CONTENT_TYPES:
        shown = kind or "an unknown type"
        raise UserFacingError(
            f"`{file.option}` must be a JPEG, PNG or WebP image; `{file.filename}` is {shown}.",
            code="bad_image",
        )
    if file.size > IMAGE_MAX_BYTES:
        raise UserFacingError(
            f"`{file.option}` is {file.size / MB:.1f} MB; images can be at most 50 MB.",
            code="bad_image",
        )
    if not file.width or not file.height:
        raise UserFacingError(
            f"I could not read the size of `{file.filename}`; attach it again as a "
            "JPEG, PNG or WebP image.",
            code="bad_image",
        )
    if min(file.width, file.height) < IMAGE_MIN_SIDE:
        raise UserFacingError(
            f"`{file.option}` is {file.width}×{file.height} px; images must be at least "
            f"{IMAGE_MIN_SIDE}×{IMAGE_MIN_SIDE} px.",
            code="bad_image",
        )
    ratio = max(file.width, file.height) / min(file.width, file.height)
    if ratio > IMAGE_MAX_ASPECT:
        raise UserFacingError(
            f"`{file.option}` is {file.width}×{file.height} px, too long and thin; the sides "
            "may differ by at most 4 times (between 1:4 and 4:1). Crop it and try again.",
            code="bad_image",
        )


def check_audio(file: AttachedFile) -> None:
    kind = _base_type(file.content_type)
    if kind not in AUDIO_CONTENT_TYPES:
        shown = kind or "an unknown type"
        raise UserFacingError(
            f"`{file.option}` must be an MP3, WAV, M4A or FLAC file; `{file.filename}` is {shown}.",
            code="bad_audio",
        )
    if file.size > AUDIO_MAX_BYTES:
        raise UserFacingError(
            f"`{file.option}` is {file.size / MB:.1f} MB; music can be at most 20 MB.",
            code="bad_audio",
        )


def check_subject_references(prompt: str, subjects: set[int]) -> None:
    """Every `@N` in a reference prompt must name a subject that is attached."""
    named = {int(number) for number in SUBJECT_MENTION.findall(prompt)}
    missing = sorted(named - subjects)
    if missing:
        names = ", ".join(f"@{n}" for n in missing)
        attach = ", ".join(f"`subject{n}`" for n in missing)
        raise UserFacingError(
            f"The prompt names {names}, but {attach} is not attached. "
            "Attach it, or take it out of the prompt.",
            code="bad_prompt",
        )


def parse_voices(text: str | None, subjects: set[int]) -> dict[int, str]:
    """Parse `1=voice_a 2=voice_b` into {subject: voice id}."""
    if not text or not text.strip():
        return {}
    voices: dict[int, str] = {}
    for pair in re.split(r"[,\s]+(?=\d+\s*[=:])", text.strip()):
        match = VOICE_PAIR.match(pair.strip())
        if match is None:
            raise UserFacingError(
                f"I could not read `voices`: `{pair.strip()[:40]}`. Write pairs like "
                "`1=voice_a 2=voice_b` (subject number = voice id; letters, digits, `_ - .`).",
                code="bad_voices",
            )
        subject, voice = int(match.group(1)), match.group(2)
        if subject not in subjects:
            raise UserFacingError(
                f"`voices` gives subject {subject} a voice, but `subject{subject}` is not "
                "attached.",
                code="bad_voices",
            )
        if subject in voices:
            raise UserFacingError(f"`voices` names subject {subject} twice.", code="bad_voices")
        voices[subject] = voice
    return voices
