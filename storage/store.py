"""Every SQL statement of the bot, behind typed methods.

A `Store` is handed out by `Database.transaction()` (writable) or `Database.read()`; it is
only valid inside that block. The methods are deliberately small and policy-free: what a
balance means and when a hold may be placed is decided in the core (`bot.core`), which
calls several of these inside one transaction. They are grouped by what they touch:
`storage.jobs`, `storage.leases`, `storage.ledger`, `storage.guilds`.
"""

from __future__ import annotations

from storage.guilds import UNSET, GuildQueries, Unset
from storage.jobs import JobQueries
from storage.leases import LeaseQueries
from storage.ledger import LedgerQueries
from storage.sql import ReadOnlyStoreError

__all__ = ["UNSET", "ReadOnlyStoreError", "Store", "Unset"]


class Store(JobQueries, LeaseQueries, LedgerQueries, GuildQueries):
    """The queries of one transaction."""
