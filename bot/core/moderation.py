"""Moderation: members' allowances, bonus credits and blocks, and a server's settings.

Every change is one transaction together with a ledger row naming the moderator, so
`/quota-admin log` can say who did what and when. Ledger reasons are plain text; a channel
is written as `{channel:ID}` and a role as `{role:ID}`, which each front end shows its own
way (a Discord mention).
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

from bot.core import refusals
from bot.core.books import Books, guild_key, member_key
from bot.core.catalog import CATALOG
from bot.core.moves import clip, credits
from bot.core.pricing import default_price
from bot.core.quota import PERIODS, bonus_removable, describe_allowance, period_start, resettable
from storage import UNSET, Balance, GuildSettings, LedgerPage, Period, Store, Unset
from storage.models import LedgerKind

MAX_CONCURRENT_LIMIT = 50
MAX_ROLE_ALLOWANCE = 1_000_000
TYPICAL_PRICE_SAMPLE = 20
REASON_MAX_CHARS = 200

Roles = Iterable[int]  # the roles a member holds, as the platform says

# One change to a member's books, made inside the transaction: may update their settings,
# may refuse; returns the ledger row's amount and reason.
MemberChange = Callable[[Store, GuildSettings, datetime], Awaitable[tuple[int, str]]]


def channel_ref(channel_id: int) -> str:
    """How a ledger reason names a channel (front ends render it)."""
    return f"{{channel:{channel_id}}}"


def role_ref(role_id: int) -> str:
    """How a ledger reason names a role (front ends render it)."""
    return f"{{role:{role_id}}}"


class Moderation:
    def __init__(self, books: Books) -> None:
        self._books = books

    # --- reading -------------------------------------------------------------------------

    async def balance(self, guild_id: int, user_id: int, role_ids: Roles = ()) -> Balance:
        """A member's balance; `role_ids`: the roles they hold (for role allowances)."""
        now = self._books.now()
        async with self._books.db.read() as store:
            guild = await self._books.guild(store, guild_id)
            return await self._books.balance(store, guild, user_id, now, role_ids)

    async def typical_price(self, guild_id: int) -> int:
        """The median price of the guild's recent jobs, else of a default video."""
        async with self._books.db.read() as store:
            prices = await store.recent_prices(guild_id, TYPICAL_PRICE_SAMPLE)
            guild = await self._books.guild(store, guild_id)
        if prices:
            return int(statistics.median_low(prices))
        names = [m for m in (guild.enabled_models or list(CATALOG)) if m in CATALOG]
        return default_price(names[0] if names else next(iter(CATALOG)), self._books.settings)

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        async with self._books.db.read() as store:
            return await self._books.guild(store, guild_id)

    async def ledger(
        self, guild_id: int, member_id: int | None = None, page: int = 0, per_page: int = 10
    ) -> LedgerPage:
        """The guild's (or one member's) ledger, newest first; past the end: the last page."""
        async with self._books.db.read() as store:
            return await store.ledger_page(guild_id, member_id, page, max(1, min(per_page, 50)))

    # --- a member ------------------------------------------------------------------------

    async def _member_change(
        self,
        guild_id: int,
        member_id: int,
        actor_id: int,
        kind: LedgerKind,
        change: MemberChange,
        role_ids: Roles = (),
    ) -> Balance:
        """The one way a member's books change: `change`, its ledger row, and the balance
        that results, in one transaction."""
        now = self._books.now()
        async with self._books.db.transaction() as store:
            await store.lock(member_key(guild_id, member_id))
            guild = await self._books.guild(store, guild_id)
            amount, reason = await change(store, guild, now)
            await store.add_ledger(
                guild_id=guild_id,
                user_id=member_id,
                kind=kind,
                amount=amount,
                actor=str(actor_id),
                reason=reason,
                at=now,
            )
            return await self._books.balance(store, guild, member_id, now, role_ids)

    async def _set_member(
        self, store: Store, guild_id: int, member_id: int, now: datetime, **fields: object
    ) -> None:
        quota = await store.member_quota(guild_id, member_id)
        await store.save_member_quota(quota.model_copy(update=fields), now)

    async def set_allowance(
        self,
        guild_id: int,
        member_id: int,
        credits: int | None,
        actor_id: int,
        role_ids: Roles = (),
    ) -> Balance:
        """Override a member's allowance per period: a number, or None for unlimited."""
        if credits is not None and credits < 0:
            raise refusals.OutOfRange("credits", 0, None)

        async def change(store: Store, guild: GuildSettings, now: datetime) -> tuple[int, str]:
            await self._set_member(
                store, guild_id, member_id, now, allowance=credits, unlimited=credits is None
            )
            return credits or 0, f"allowance set to {describe_allowance(credits, guild.period)}"

        return await self._member_change(guild_id, member_id, actor_id, "set", change, role_ids)

    async def clear_allowance(
        self, guild_id: int, member_id: int, actor_id: int, role_ids: Roles = ()
    ) -> Balance:
        """Drop a member's override: they follow the server default again."""

        async def change(store: Store, guild: GuildSettings, now: datetime) -> tuple[int, str]:
            await self._set_member(store, guild_id, member_id, now, allowance=None, unlimited=False)
            default = describe_allowance(guild.allowance, guild.period)
            return guild.allowance, f"allowance back to the server default ({default})"

        return await self._member_change(guild_id, member_id, actor_id, "set", change, role_ids)

    async def grant_bonus(
        self,
        guild_id: int,
        member_id: int,
        credits: int,
        reason: str,
        actor_id: int,
        role_ids: Roles = (),
    ) -> Balance:
        """Add one-time bonus credits (spent after the period allowance; never reset).

        A negative grant takes unused bonus away, never below zero.
        """
        if credits == 0:
            raise refusals.OutOfRange("credits", None, None)
        why = clip(reason.strip(), REASON_MAX_CHARS)

        async def change(store: Store, guild: GuildSettings, now: datetime) -> tuple[int, str]:
            if credits > 0:
                return credits, why or "bonus"
            usage = await store.member_usage(guild_id, member_id, None)
            amount = -min(-credits, bonus_removable(usage))
            if amount == 0:
                raise refusals.NoBonusToTake()
            return amount, why or "bonus removed"

        return await self._member_change(guild_id, member_id, actor_id, "grant", change, role_ids)

    async def reset_usage(
        self, guild_id: int, member_id: int, actor_id: int, role_ids: Roles = ()
    ) -> Balance:
        """Give back this period's committed use (what is still held stays held)."""

        async def change(store: Store, guild: GuildSettings, now: datetime) -> tuple[int, str]:
            since = period_start(guild.period, now)
            usage = await store.member_usage(guild_id, member_id, since)
            return resettable(usage), "usage of this period reset"

        return await self._member_change(guild_id, member_id, actor_id, "reset", change, role_ids)

    async def block(
        self, guild_id: int, member_id: int, actor_id: int, reason: str = ""
    ) -> Balance:
        """Stop a member from starting videos (running ones finish)."""
        return await self._set_blocked(guild_id, member_id, actor_id, True, reason)

    async def unblock(
        self, guild_id: int, member_id: int, actor_id: int, reason: str = ""
    ) -> Balance:
        return await self._set_blocked(guild_id, member_id, actor_id, False, reason)

    async def _set_blocked(
        self, guild_id: int, member_id: int, actor_id: int, blocked: bool, reason: str
    ) -> Balance:
        why = clip(reason.strip(), REASON_MAX_CHARS) or ("blocked" if blocked else "unblocked")

        async def change(store: Store, guild: GuildSettings, now: datetime) -> tuple[int, str]:
            await self._set_member(store, guild_id, member_id, now, blocked=blocked)
            return 0, why

        kind: LedgerKind = "block" if blocked else "unblock"
        return await self._member_change(guild_id, member_id, actor_id, kind, change)

    # --- the server ----------------------------------------------------------------------

    async def set_guild_default(
        self, guild_id: int, credits: int, period: Period, actor_id: int
    ) -> GuildSettings:
        """The allowance every member without an override gets, and how often it renews."""
        if credits < 0:
            raise refusals.OutOfRange("credits", 0, None)
        if period not in PERIODS:
            raise refusals.NotOneOf("period", PERIODS)

        async def change(store: Store, now: datetime) -> None:
            await store.update_guild_settings(guild_id, now, allowance=credits, period=period)

        reason = f"server default set to {describe_allowance(credits, period)}"
        return await self._guild_change(guild_id, actor_id, credits, reason, change)

    async def set_role_allowance(
        self, guild_id: int, role_id: int, credits: int, actor_id: int
    ) -> GuildSettings:
        """Members holding the role get `credits` per period instead of the server default
        (the largest of their roles counts; a member's own setting still wins)."""
        if not 0 <= credits <= MAX_ROLE_ALLOWANCE:
            raise refusals.OutOfRange("credits", 0, MAX_ROLE_ALLOWANCE)

        async def change(store: Store, now: datetime) -> None:
            await store.set_role_allowance(guild_id, role_id, credits, now)

        async with self._books.db.read() as store:
            period = (await self._books.guild(store, guild_id)).period
        reason = f"role allowance: {role_ref(role_id)} gets {describe_allowance(credits, period)}"
        return await self._guild_change(guild_id, actor_id, credits, reason, change)

    async def remove_role_allowance(
        self, guild_id: int, role_id: int, actor_id: int
    ) -> GuildSettings:
        """The role no longer has an allowance of its own here."""

        async def change(store: Store, now: datetime) -> None:
            if not await store.remove_role_allowance(guild_id, role_id):
                raise refusals.NoRoleAllowance(role_id)

        reason = f"role allowance of {role_ref(role_id)} removed"
        return await self._guild_change(guild_id, actor_id, 0, reason, change)

    async def update_guild_settings(
        self,
        guild_id: int,
        actor_id: int,
        *,
        allowed_channels: Iterable[int] | Unset = UNSET,
        max_concurrent: int | Unset = UNSET,
        enabled_models: Iterable[str] | Unset | None = UNSET,
        daily_cap: int | Unset | None = UNSET,
        expected: GuildSettings | None = None,
    ) -> GuildSettings:
        """Change the given settings only. `enabled_models=None` enables every model,
        `allowed_channels=[]` allows every channel, `daily_cap=None` removes the cap.

        `expected`: the settings the change was computed from (e.g. a list with one channel
        added); if another moderator changed them meanwhile, nothing is written.
        """
        notes: list[str] = []
        channels: list[int] | Unset = UNSET
        models: list[str] | Unset | None = UNSET
        if not isinstance(allowed_channels, Unset):
            channels = sorted({int(c) for c in allowed_channels})
            shown = ", ".join(channel_ref(c) for c in channels) if channels else "all"
            notes.append(f"channels: {shown}")
        if not isinstance(max_concurrent, Unset):
            if not 1 <= max_concurrent <= MAX_CONCURRENT_LIMIT:
                raise refusals.OutOfRange("jobs", 1, MAX_CONCURRENT_LIMIT)
            notes.append(f"running jobs per member: {max_concurrent}")
        if enabled_models is None:
            models = None
            notes.append("models: all")
        elif not isinstance(enabled_models, Unset):
            models = list(dict.fromkeys(enabled_models))
            unknown = [m for m in models if m not in CATALOG]
            if unknown:
                raise refusals.UnknownModel(", ".join(unknown), tuple(sorted(CATALOG)))
            if not models:
                raise refusals.NoModelLeft()
            notes.append(f"models: {', '.join(models)}")
        if not isinstance(daily_cap, Unset):
            if daily_cap is not None and daily_cap < 0:
                raise refusals.OutOfRange("credits", 0, None)
            notes.append("daily cap: " + ("none" if daily_cap is None else credits(daily_cap)))
        if not notes:
            return await self.guild_settings(guild_id)

        async def change(store: Store, now: datetime) -> None:
            await store.update_guild_settings(
                guild_id,
                now,
                allowed_channels=channels,
                max_concurrent=max_concurrent,
                enabled_models=models,
                daily_cap=daily_cap,
            )

        reason = "server settings: " + "; ".join(notes)
        return await self._guild_change(guild_id, actor_id, 0, reason, change, expected)

    async def _guild_change(
        self,
        guild_id: int,
        actor_id: int,
        amount: int,
        reason: str,
        change: Callable[[Store, datetime], Awaitable[None]],
        expected: GuildSettings | None = None,
    ) -> GuildSettings:
        """The one way a server's settings change: `change` and its ledger row, in one
        transaction, unless they differ from `expected` by then."""
        now = self._books.now()
        async with self._books.db.transaction() as store:
            await store.lock(guild_key(guild_id))
            if expected is not None and expected != await self._books.guild(store, guild_id):
                raise refusals.SettingsChanged()
            await change(store, now)
            await store.add_ledger(
                guild_id=guild_id,
                user_id=None,
                kind="default",
                amount=amount,
                actor=str(actor_id),
                reason=reason,
                at=now,
            )
            return await self._books.guild(store, guild_id)
