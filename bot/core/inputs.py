"""Checks on what a member attaches and types, before anything is spent.

Platform-neutral: the front end passes in what its platform reports about an attachment
(content type, size, width, height); every problem is a typed refusal naming the option
and what is wrong with it.
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
from bot.core.refusals import BadAudio, BadImage, BadVoices, ImageProblem, UnknownSubjects

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

    def refuse(problem: ImageProblem) -> BadImage:
        return BadImage(
            option=file.option,
            filename=file.filename,
            problem=problem,
            content_type=kind,
            size=file.size,
            width=file.width or 0,
            height=file.height or 0,
        )

    if kind not in IMAGE_CONTENT_TYPES:
        raise refuse("type")
    if file.size > IMAGE_MAX_BYTES:
        raise refuse("too_big")
    if not file.width or not file.height:
        raise refuse("no_size")
    if min(file.width, file.height) < IMAGE_MIN_SIDE:
        raise refuse("too_small")
    if max(file.width, file.height) / min(file.width, file.height) > IMAGE_MAX_ASPECT:
        raise refuse("too_thin")


def check_audio(file: AttachedFile) -> None:
    kind = _base_type(file.content_type)
    if kind not in AUDIO_CONTENT_TYPES:
        raise BadAudio(file.option, file.filename, "type", content_type=kind, size=file.size)
    if file.size > AUDIO_MAX_BYTES:
        raise BadAudio(file.option, file.filename, "too_big", content_type=kind, size=file.size)


def check_subject_references(prompt: str, subjects: set[int]) -> None:
    """Every `@N` in a reference prompt must name a subject that is attached."""
    named = {int(number) for number in SUBJECT_MENTION.findall(prompt)}
    missing = sorted(named - subjects)
    if missing:
        raise UnknownSubjects(tuple(missing))


def parse_voices(text: str | None, subjects: set[int]) -> dict[int, str]:
    """Parse `1=voice_a 2=voice_b` into {subject: voice id}."""
    if not text or not text.strip():
        return {}
    voices: dict[int, str] = {}
    for pair in re.split(r"[,\s]+(?=\d+\s*[=:])", text.strip()):
        match = VOICE_PAIR.match(pair.strip())
        if match is None:
            raise BadVoices("unreadable", text=pair.strip()[:40])
        subject, voice = int(match.group(1)), match.group(2)
        if subject not in subjects:
            raise BadVoices("not_attached", subject=subject)
        if subject in voices:
            raise BadVoices("twice", subject=subject)
        voices[subject] = voice
    return voices
