"""Storage: the only place with SQL. Opens, migrates and serialises the database (SQLite
for one process, PostgreSQL for many, behind one `Database` interface) and returns typed
models; knows nothing of Discord or of the bot's policies."""

from __future__ import annotations

from storage.database import (
    CorruptDatabaseError,
    Database,
    Dialect,
    Migration,
    MigrationError,
    SchemaTooNewError,
    StorageError,
    bundled_migrations,
    describe_url,
    is_postgres_url,
    url_password,
)
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
from storage.opening import open_database
from storage.process_lock import StoreInUseError, sqlite_process_lock
from storage.sqlite import SQLiteDatabase
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
    "Dialect",
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
    "SQLiteDatabase",
    "SchemaTooNewError",
    "StorageError",
    "Store",
    "StoreInUseError",
    "Unset",
    "bundled_migrations",
    "describe_url",
    "is_postgres_url",
    "open_database",
    "sqlite_process_lock",
    "url_password",
]
