"""Discord's form-body checks, as pure functions: message bodies, components, commands.

Each raises :class:`~.errors.DiscordError` 400 / 50035 naming the field the way Discord does
(``embeds.0.fields.3.value``), or 50006 for an empty message. The limits are Discord's:
2000 characters of content, 10 embeds of at most 6000 characters, 25 fields, 5 components
per row, 25 options and choices per command, names of 1–32 ``[-_\\w]`` characters.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import DiscordError, form_error
from .interactions import SUB_COMMAND, SUB_COMMAND_GROUP
from .models import UploadedFile

COMMAND_NAME = re.compile(r"^[-_\w]{1,32}$")


def validate_message_body(
    body: dict[str, Any], files: list[UploadedFile], *, creating: bool
) -> None:
    content = body.get("content")
    if content is not None and not isinstance(content, str):
        raise form_error("content", "BASE_TYPE_BAD_TYPE", "Must be a string.")
    if content and len(content) > 2000:
        raise form_error("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        raise form_error("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    limits = {"title": 256, "description": 4096}
    for i, embed in enumerate(embeds):
        for key, limit in limits.items():
            value = embed.get(key) or ""
            total += len(value)
            if len(value) > limit:
                raise form_error(
                    f"embeds.{i}.{key}",
                    "BASE_TYPE_MAX_LENGTH",
                    f"Must be {limit} or fewer in length.",
                )
        fields = embed.get("fields") or []
        if len(fields) > 25:
            raise form_error(
                f"embeds.{i}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
            )
        for j, fld in enumerate(fields):
            name, value = str(fld.get("name") or ""), str(fld.get("value") or "")
            if not name or len(name) > 256:
                raise form_error(
                    f"embeds.{i}.fields.{j}.name",
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 256 in length.",
                )
            if not value or len(value) > 1024:
                raise form_error(
                    f"embeds.{i}.fields.{j}.value",
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 1024 in length.",
                )
            total += len(name) + len(value)
        footer = (embed.get("footer") or {}).get("text") or ""
        author = (embed.get("author") or {}).get("name") or ""
        if len(footer) > 2048:
            raise form_error(
                f"embeds.{i}.footer.text",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 2048 or fewer in length.",
            )
        if len(author) > 256:
            raise form_error(
                f"embeds.{i}.author.name",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 256 or fewer in length.",
            )
        total += len(footer) + len(author)
    if total > 6000:
        raise form_error(
            "embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
        )
    nonce = body.get("nonce")
    if nonce is not None and len(str(nonce)) > 25:
        raise form_error("nonce", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    validate_components(body.get("components") or [])
    am = body.get("allowed_mentions")
    if isinstance(am, dict):
        parse = am.get("parse") or []
        for kind in ("users", "roles"):
            if kind in parse and am.get(kind):
                raise form_error(
                    f"allowed_mentions.{kind}",
                    "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                    f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
                )
    if creating:
        has_any = (
            content
            or embeds
            or files
            or body.get("components")
            or body.get("sticker_ids")
            or body.get("poll")
        )
        if not has_any:
            raise DiscordError(400, 50006)


def validate_components(components: list[dict[str, Any]]) -> None:
    for i, comp in enumerate(components):
        custom_id = comp.get("custom_id")
        if custom_id is not None and len(str(custom_id)) > 100:
            raise form_error(
                f"components.{i}.custom_id",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 100 or fewer in length.",
            )
        label = comp.get("label")
        if label is not None and len(str(label)) > 80:
            raise form_error(
                f"components.{i}.label",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 80 or fewer in length.",
            )
        if comp.get("type") == 1 and len(comp.get("components") or []) > 5:
            raise form_error(
                f"components.{i}.components",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 5 or fewer in length.",
            )
        if isinstance(comp.get("components"), list):
            validate_components(comp["components"])


def validate_command(cmd: dict[str, Any], *, path: str) -> None:
    ctype = int(cmd.get("type", 1))
    name = cmd.get("name")
    if (
        not isinstance(name, str)
        or not COMMAND_NAME.match(name)
        or (ctype == 1 and name != name.lower())
    ):
        raise form_error(
            f"{path}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
        )
    desc = cmd.get("description", "")
    if ctype == 1 and not (1 <= len(desc or "") <= 100):
        raise form_error(
            f"{path}.description",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 100 in length.",
        )
    validate_options(cmd.get("options") or [], path=f"{path}.options")


def validate_options(options: list[dict[str, Any]], *, path: str) -> None:
    if len(options) > 25:
        raise form_error(path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    names: set[str] = set()
    seen_optional = False
    for i, opt in enumerate(options):
        name = opt.get("name", "")
        if not COMMAND_NAME.match(name) or name != name.lower():
            raise form_error(
                f"{path}.{i}.name",
                "APPLICATION_COMMAND_INVALID_NAME",
                "Command name is invalid",
            )
        if name in names:
            raise form_error(
                f"{path}.{i}.name",
                "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                "Option name already exists",
            )
        names.add(name)
        if not (1 <= len(opt.get("description") or "") <= 100):
            raise form_error(
                f"{path}.{i}.description",
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            )
        otype = int(opt.get("type", 0))
        if otype in (SUB_COMMAND, SUB_COMMAND_GROUP):
            validate_options(opt.get("options") or [], path=f"{path}.{i}.options")
            continue
        if opt.get("required"):
            if seen_optional:
                raise form_error(
                    f"{path}.{i}.required",
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            seen_optional = True
        if len(opt.get("choices") or []) > 25:
            raise form_error(
                f"{path}.{i}.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
            )
        if opt.get("choices") and opt.get("autocomplete"):
            raise form_error(
                f"{path}.{i}.autocomplete",
                "APPLICATION_COMMAND_AUTOCOMPLETE_INVALID",
                "Autocomplete cannot be enabled on options with choices",
            )
