"""Storage: the only place with SQL. Opens, migrates and serialises the database and
returns typed models; knows nothing of Discord or of the bot's policies."""

from __future__ import annotations

from storage.models import (
    ACTIVE_STATES,
    CHARGED_STATES,
    RELEASED_STATES,
    SYSTEM_ACTOR,
    TERMINAL_STATES,
    Balance,
    GuildDefaults,
    GuildSettings,
    InputRef,
    Job,
    JobState,
    LedgerEntry,
    LedgerPage,
    MemberQuota,
    MemberUsage,
    NewJob,
    Period,
)
from storage.sqlite import (
    CorruptDatabaseError,
    Database,
    Migration,
    MigrationError,
    SchemaTooNewError,
    StorageError,
    bundled_migrations,
)
from storage.store import UNSET, ReadOnlyStoreError, Store, Unset

__all__ = [
    "ACTIVE_STATES",
    "CHARGED_STATES",
    "RELEASED_STATES",
    "SYSTEM_ACTOR",
    "TERMINAL_STATES",
    "UNSET",
    "Balance",
    "CorruptDatabaseError",
    "Database",
    "GuildDefaults",
    "GuildSettings",
    "InputRef",
    "Job",
    "JobState",
    "LedgerEntry",
    "LedgerPage",
    "MemberQuota",
    "MemberUsage",
    "Migration",
    "MigrationError",
    "NewJob",
    "Period",
    "ReadOnlyStoreError",
    "SchemaTooNewError",
    "StorageError",
    "Store",
    "Unset",
    "bundled_migrations",
]
