"""Application commands: what the bot synced, validated the way Discord validates it.

``PUT``/``POST``/``GET`` of global and guild commands. Every PUT is checked (names, lengths,
option order, choices, duplicates: see validation.py), stored with stable ids (a re-sync keeps a
command's id, as Discord does) and recorded in ``command_syncs``. ``global_commands`` and
``guild_commands[guild_id]`` hold what Discord would show; options.py builds interactions
against them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .core import RouteSpec, route
from .errors import DiscordError, form_error
from .interactions import find_command
from .models import CommandSync, RecordedRequest
from .validation import validate_command
from .world import WorldMixin

_COMMANDS = r"/applications/{app_id}/commands"
_GUILD_COMMANDS = r"/applications/{app_id}/guilds/{guild_id}/commands"


class CommandsMixin(WorldMixin):
    """The stored application commands and their routes."""

    ROUTES: ClassVar[tuple[RouteSpec, ...]] = (
        route("GET", _COMMANDS, "_r_get_commands"),
        route("PUT", _COMMANDS, "_r_put_commands"),
        route("POST", _COMMANDS, "_r_post_command"),
        route("GET", _GUILD_COMMANDS, "_r_get_commands"),
        route("PUT", _GUILD_COMMANDS, "_r_put_commands"),
        route("POST", _GUILD_COMMANDS, "_r_post_command"),
    )

    global_commands: list[dict[str, Any]]
    guild_commands: dict[int, list[dict[str, Any]]]
    command_syncs: list[CommandSync]  # every PUT, in order

    def _init_commands(self) -> None:
        self.global_commands = []
        self.guild_commands = {}
        self.command_syncs = []

    def _command_schema(self, guild_id: int, name: str) -> tuple[dict[str, Any] | None, bool]:
        """(schema, is_guild_command) of a synced chat-input command."""
        cmd = find_command(self.guild_commands.get(guild_id, []), name)
        if cmd is not None:
            return cmd, True
        return find_command(self.global_commands, name), False

    def _stored_command(
        self, cmd: dict[str, Any], guild_id: int | None, existing: list[dict[str, Any]]
    ) -> dict[str, Any]:
        ctype = int(cmd.get("type", 1))
        previous = find_command(existing, cmd["name"], ctype)
        dmp = cmd.get("default_member_permissions")
        stored: dict[str, Any] = {
            "id": previous["id"] if previous else str(self.snowflake()),
            "application_id": str(self.application_id),
            "version": str(self.snowflake()),
            "type": ctype,
            "name": cmd["name"],
            "name_localizations": cmd.get("name_localizations"),
            "description": cmd.get("description", ""),
            "description_localizations": cmd.get("description_localizations"),
            "options": cmd.get("options") or [],
            "default_member_permissions": None if dmp is None else str(dmp),
            "nsfw": bool(cmd.get("nsfw", False)),
            "contexts": cmd.get("contexts"),
            "integration_types": cmd.get("integration_types", [0]),
        }
        if guild_id is not None:
            stored["guild_id"] = str(guild_id)
        elif "dm_permission" in cmd:
            stored["dm_permission"] = cmd["dm_permission"]
        return stored

    def _check_app(self, app_id: str) -> None:
        if int(app_id) != self.application_id:
            raise DiscordError(403, 50001)

    async def _r_get_commands(
        self, rec: RecordedRequest, app_id: str, guild_id: str | None = None
    ) -> Any:
        self._check_app(app_id)
        if guild_id is not None:
            self._guild(guild_id)
            return self.guild_commands.get(int(guild_id), [])
        return self.global_commands

    async def _r_put_commands(
        self, rec: RecordedRequest, app_id: str, guild_id: str | None = None
    ) -> Any:
        self._check_app(app_id)
        body = rec.json
        if not isinstance(body, list):
            raise form_error("_", "BASE_TYPE_ARRAY", "Must be an array.")
        seen: set[tuple[int, str]] = set()
        for i, cmd in enumerate(body):
            validate_command(cmd, path=str(i))
            key = (int(cmd.get("type", 1)), cmd["name"])
            if key in seen:
                raise form_error(
                    f"{i}.name",
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    f"Application command names must be unique ({cmd['name']})",
                )
            seen.add(key)
        gid = int(guild_id) if guild_id is not None else None
        if gid is not None:
            self._guild(gid)
        existing = self.guild_commands.get(gid, []) if gid is not None else self.global_commands
        stored = [self._stored_command(cmd, gid, existing) for cmd in body]
        if gid is not None:
            self.guild_commands[gid] = stored
        else:
            self.global_commands = stored
        self.command_syncs.append(CommandSync(gid, body, self.now()))
        return stored

    async def _r_post_command(
        self, rec: RecordedRequest, app_id: str, guild_id: str | None = None
    ) -> Any:
        self._check_app(app_id)
        cmd = rec.json if isinstance(rec.json, dict) else {}
        validate_command(cmd, path="_")
        gid = int(guild_id) if guild_id is not None else None
        existing = (
            self.guild_commands.setdefault(gid, []) if gid is not None else self.global_commands
        )
        stored = self._stored_command(cmd, gid, existing)
        existing[:] = [c for c in existing if c["id"] != stored["id"]] + [stored]
        return stored
