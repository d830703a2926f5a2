"""Small facts (meta), each guild's settings and each member's quota settings."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from storage.models import GuildDefaults, GuildSettings, MemberQuota, Period
from storage.sql import Queries, to_db


class Unset(enum.Enum):
    UNSET = "UNSET"


UNSET: Final = Unset.UNSET
"""Marks a keyword argument that was not given (where None is a meaningful value)."""


class GuildQueries(Queries):
    # --- meta -------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        row = await self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    async def set_meta(self, key: str, value: str) -> None:
        await self._write(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # --- guild settings ---------------------------------------------------------------

    async def guild_settings(self, guild_id: int, defaults: GuildDefaults) -> GuildSettings:
        row = await self._one("SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,))
        roles = await self.role_allowances(guild_id)
        if row is None:
            return GuildSettings(
                guild_id=guild_id,
                allowance=defaults.allowance,
                period=defaults.period,
                max_concurrent=defaults.max_concurrent,
                role_allowances=roles,
            )
        enabled = row["enabled_models"]
        return GuildSettings(
            guild_id=guild_id,
            allowance=defaults.allowance if row["allowance"] is None else row["allowance"],
            period=defaults.period if row["period"] is None else row["period"],
            max_concurrent=(
                defaults.max_concurrent if row["max_concurrent"] is None else row["max_concurrent"]
            ),
            allowed_channels=[int(c) for c in json.loads(row["allowed_channels"])],
            enabled_models=None if enabled is None else [str(m) for m in json.loads(enabled)],
            daily_cap=row["daily_cap"],
            role_allowances=roles,
        )

    # --- role allowances --------------------------------------------------------------

    async def role_allowances(self, guild_id: int) -> dict[int, int]:
        rows = await self._all(
            "SELECT role_id, allowance FROM role_allowances WHERE guild_id = ? ORDER BY role_id",
            (guild_id,),
        )
        return {int(row["role_id"]): int(row["allowance"]) for row in rows}

    async def set_role_allowance(
        self, guild_id: int, role_id: int, allowance: int, at: datetime
    ) -> None:
        await self._write(
            "INSERT INTO role_allowances (guild_id, role_id, allowance, updated_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (guild_id, role_id) DO UPDATE SET "
            "allowance = excluded.allowance, updated_at = excluded.updated_at",
            (guild_id, role_id, allowance, to_db(at)),
        )

    async def remove_role_allowance(self, guild_id: int, role_id: int) -> bool:
        """Whether the role had an allowance here (it has none now)."""
        removed = await self._write(
            "DELETE FROM role_allowances WHERE guild_id = ? AND role_id = ?", (guild_id, role_id)
        )
        return removed > 0

    async def update_guild_settings(
        self,
        guild_id: int,
        at: datetime,
        *,
        allowance: int | Unset = UNSET,
        period: Period | Unset = UNSET,
        max_concurrent: int | Unset = UNSET,
        allowed_channels: Iterable[int] | Unset = UNSET,
        enabled_models: Iterable[str] | Unset | None = UNSET,
        daily_cap: int | Unset | None = UNSET,
    ) -> None:
        """Change only the settings given; the rest keep their value (or stay on default)."""
        row = await self._one("SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,))
        current: dict[str, Any] = (
            dict(row)
            if row is not None
            else {
                "allowance": None,
                "period": None,
                "max_concurrent": None,
                "allowed_channels": "[]",
                "enabled_models": None,
                "daily_cap": None,
            }
        )
        if not isinstance(allowance, Unset):
            current["allowance"] = allowance
        if not isinstance(period, Unset):
            current["period"] = period
        if not isinstance(max_concurrent, Unset):
            current["max_concurrent"] = max_concurrent
        if not isinstance(allowed_channels, Unset):
            current["allowed_channels"] = json.dumps(sorted({int(c) for c in allowed_channels}))
        if not isinstance(enabled_models, Unset):
            current["enabled_models"] = (
                None if enabled_models is None else json.dumps(list(dict.fromkeys(enabled_models)))
            )
        if not isinstance(daily_cap, Unset):
            current["daily_cap"] = daily_cap
        await self._write(
            "INSERT INTO guild_settings (guild_id, allowance, period, max_concurrent, "
            "allowed_channels, enabled_models, daily_cap, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (guild_id) DO UPDATE SET allowance = excluded.allowance, "
            "period = excluded.period, max_concurrent = excluded.max_concurrent, "
            "allowed_channels = excluded.allowed_channels, "
            "enabled_models = excluded.enabled_models, daily_cap = excluded.daily_cap, "
            "updated_at = excluded.updated_at",
            (
                guild_id,
                current["allowance"],
                current["period"],
                current["max_concurrent"],
                current["allowed_channels"],
                current["enabled_models"],
                current["daily_cap"],
                to_db(at),
            ),
        )

    # --- member quota settings --------------------------------------------------------

    async def member_quota(self, guild_id: int, user_id: int) -> MemberQuota:
        row = await self._one(
            "SELECT allowance, unlimited, blocked FROM member_quota "
            "WHERE guild_id = ? AND user_id = ?",
            (guild_id, user_id),
        )
        if row is None:
            return MemberQuota(guild_id=guild_id, user_id=user_id)
        return MemberQuota(
            guild_id=guild_id,
            user_id=user_id,
            allowance=row["allowance"],
            unlimited=bool(row["unlimited"]),
            blocked=bool(row["blocked"]),
        )

    async def save_member_quota(self, quota: MemberQuota, at: datetime) -> None:
        await self._write(
            "INSERT INTO member_quota (guild_id, user_id, allowance, unlimited, blocked, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (guild_id, user_id) DO UPDATE SET allowance = excluded.allowance, "
            "unlimited = excluded.unlimited, blocked = excluded.blocked, "
            "updated_at = excluded.updated_at",
            (
                quota.guild_id,
                quota.user_id,
                quota.allowance,
                int(quota.unlimited),
                int(quota.blocked),
                to_db(at),
            ),
        )
