"""Turning a test's ``options={...}`` into interaction data, as Discord's client would.

For a command the bot synced, option types, subcommand paths, required options, choices,
min/max values and lengths come from the stored schema (commands.py) and are checked before
anything is sent; for a command never synced, types are inferred from the Python values
(``AttachmentSpec`` → 11, ``int`` → 4, ``FakeMember`` → 6 …). Attachments, users, members,
roles and channels are put in ``data.resolved`` the way Discord does.
"""

from __future__ import annotations

from typing import Any

from . import payloads
from .attachments import AttachmentsMixin
from .commands import CommandsMixin
from .interactions import (
    ATTACHMENT,
    BOOLEAN,
    CHANNEL,
    INTEGER,
    MENTIONABLE,
    NUMBER,
    ROLE,
    STRING,
    SUB_COMMAND,
    SUB_COMMAND_GROUP,
    USER,
    AttachmentSpec,
    option_type_for,
)
from .models import FakeChannel, FakeGuild, FakeRole


class OptionsMixin(CommandsMixin, AttachmentsMixin):
    """Builds ``data`` of APPLICATION_COMMAND and AUTOCOMPLETE interactions."""

    def _command_data(
        self,
        guild_id: int,
        channel_id: int,
        command: str,
        subcommand: str | None,
        group: str | None,
        options: dict[str, Any],
        *,
        focused: str | None,
        validate: bool,
        command_guild_id: int | None,
    ) -> dict[str, Any]:
        parts = command.split()
        name = parts[0]
        path = parts[1:]
        if group is not None:
            path.append(group)
        if subcommand is not None:
            path.append(subcommand)
        schema, is_guild = self._command_schema(guild_id, name)
        if (
            schema is None
            and validate
            and (self.global_commands or self.guild_commands.get(guild_id))
        ):
            raise LookupError(
                f"/{name} is not registered with the fake (synced: "
                f"{[c['name'] for c in self.global_commands + self.guild_commands.get(guild_id, [])]})"
            )
        resolved: dict[str, dict[str, Any]] = {}
        node = schema
        chain: list[tuple[str, int]] = []
        for depth, part in enumerate(path):
            sub = None
            if node is not None:
                sub = next(
                    (
                        o
                        for o in node.get("options") or []
                        if o.get("name") == part
                        and o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP)
                    ),
                    None,
                )
                if sub is None and validate:
                    raise LookupError(f"/{command} has no subcommand {part!r}")
            if sub is not None:
                kind = int(sub["type"])
            else:
                kind = SUB_COMMAND_GROUP if depth < len(path) - 1 else SUB_COMMAND
            chain.append((part, kind))
            node = sub
        leaf_schema = (
            (node.get("options") if node is not None else None) if (schema is not None) else None
        )
        if (
            schema is not None
            and node is not None
            and any(
                o.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in node.get("options") or []
            )
            and validate
        ):
            raise LookupError(f"/{' '.join([name, *path])} is a group: name a subcommand")
        leaf = self._build_options(
            guild_id,
            channel_id,
            leaf_schema,
            options,
            resolved,
            focused=focused,
            validate=validate and schema is not None,
        )
        for part, kind in reversed(chain):
            leaf = [{"type": kind, "name": part, "options": leaf}]
        data: dict[str, Any] = {
            "id": schema["id"] if schema else str(self.snowflake()),
            "name": name,
            "type": 1,
        }
        if leaf:
            data["options"] = leaf
        if resolved:
            data["resolved"] = resolved
        target_guild = (
            command_guild_id if command_guild_id is not None else (guild_id if is_guild else None)
        )
        if target_guild is not None:
            data["guild_id"] = str(target_guild)
        return data

    def _build_options(
        self,
        guild_id: int,
        channel_id: int,
        schema: list[dict[str, Any]] | None,
        values: dict[str, Any],
        resolved: dict[str, dict[str, Any]],
        *,
        focused: str | None,
        validate: bool,
    ) -> list[dict[str, Any]]:
        by_name = {o["name"]: o for o in schema or []}
        out: list[dict[str, Any]] = []
        if validate and focused is None:
            missing = [
                o["name"] for o in schema or [] if o.get("required") and o["name"] not in values
            ]
            if missing:
                raise ValueError(f"required options missing: {missing}")
        guild = self.guilds[guild_id]
        for name, value in values.items():
            if value is None:
                continue
            spec = by_name.get(name)
            if spec is None and validate:
                raise ValueError(f"unknown option {name!r}; the command has {sorted(by_name)}")
            otype = int(spec["type"]) if spec is not None else option_type_for(value)
            entry: dict[str, Any] = {"name": name, "type": otype}
            if name == focused:
                if validate and spec is not None and not spec.get("autocomplete"):
                    raise ValueError(f"option {name!r} has no autocomplete")
                entry["value"] = value if isinstance(value, str) else str(value)
                entry["focused"] = True
                out.append(entry)
                continue
            entry["value"] = self._option_value(guild, otype, name, value, resolved)
            if validate and spec is not None:
                self._check_option(spec, entry["value"])
            out.append(entry)
        return out

    def _option_value(
        self,
        guild: FakeGuild,
        otype: int,
        name: str,
        value: Any,
        resolved: dict[str, dict[str, Any]],
    ) -> Any:
        if otype == STRING:
            return str(value)
        if otype == INTEGER:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"option {name!r} needs an int, got {value!r}")
            return value
        if otype == NUMBER:
            return float(value)
        if otype == BOOLEAN:
            return bool(value)
        if otype == ATTACHMENT:
            if not isinstance(value, AttachmentSpec):
                raise TypeError(f"option {name!r} needs an AttachmentSpec, got {value!r}")
            att = self._new_attachment(
                "ephemeral-attachments",
                self.application_id,
                filename=value.filename,
                content_type=value.resolved_content_type(),
                data=value.content,
                size=value.resolved_size,
                width=value.width,
                height=value.height,
                description=value.description,
                ephemeral=True,
                duration_secs=value.duration_secs,
            )
            resolved.setdefault("attachments", {})[str(att.id)] = payloads.attachment(att)
            return str(att.id)
        if otype == CHANNEL:
            cid = value.id if isinstance(value, FakeChannel) else int(value)
            channel = self.channels[cid]
            data = payloads.channel(channel)
            data["permissions"] = str(guild.channel_permissions(self.bot_user.id, channel))
            resolved.setdefault("channels", {})[str(cid)] = data
            return str(cid)
        if otype == ROLE or (otype == MENTIONABLE and isinstance(value, FakeRole)):
            rid = value.id if isinstance(value, FakeRole) else int(value)
            if rid in guild.roles:
                resolved.setdefault("roles", {})[str(rid)] = payloads.role(guild.roles[rid])
                return str(rid)
            if otype == ROLE:
                raise LookupError(f"unknown role {rid}")
        if otype in (USER, MENTIONABLE):
            user = self._user(value)
            resolved.setdefault("users", {})[str(user.id)] = payloads.user(user)
            member = guild.members.get(user.id)
            if member is not None:
                data = payloads.member(member, with_user=False)
                data["permissions"] = str(guild.base_permissions(user.id))
                resolved.setdefault("members", {})[str(user.id)] = data
            return str(user.id)
        raise ValueError(f"option type {otype} of {name!r} is not supported by the fake")

    def _check_option(self, spec: dict[str, Any], value: Any) -> None:
        name = spec["name"]
        choices = spec.get("choices")
        if choices and value not in [c["value"] for c in choices]:
            raise ValueError(
                f"{value!r} is not a choice of {name!r}: {[c['value'] for c in choices]}"
            )
        if isinstance(value, int | float) and not isinstance(value, bool):
            if spec.get("min_value") is not None and value < spec["min_value"]:
                raise ValueError(f"{name!r} must be >= {spec['min_value']}")
            if spec.get("max_value") is not None and value > spec["max_value"]:
                raise ValueError(f"{name!r} must be <= {spec['max_value']}")
        if isinstance(value, str) and int(spec.get("type", 3)) == STRING:
            if spec.get("min_length") is not None and len(value) < spec["min_length"]:
                raise ValueError(f"{name!r} must be at least {spec['min_length']} characters")
            if spec.get("max_length") is not None and len(value) > spec["max_length"]:
                raise ValueError(f"{name!r} must be at most {spec['max_length']} characters")
