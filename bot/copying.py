"""`python -m bot copy-database --to postgresql://…`: move a SQLite deployment into an empty
PostgreSQL database (the work is `storage.copy`), then show both sides side by side.

The source file is opened read-only and held with the bot's one-process lock, so no bot can
write it during the copy. Each member's balance is compared as the core computes it now.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from bot.core.books import Books
from bot.settings import Settings
from storage import Balance, SQLiteDatabase, Store, describe_url, open_database
from storage.copy import CopyReport, copy_database
from storage.process_lock import sqlite_process_lock


async def copy_to_postgres(
    settings: Settings, source: Path, target_url: str, say: Callable[[str], None]
) -> CopyReport:
    """Copy `source` into the PostgreSQL database at `target_url` (migrating it first);
    raises `StorageError` (the target is not empty, cannot be reached, …)."""
    with sqlite_process_lock(source, must_create=False):
        src = await SQLiteDatabase.open(source, read_only=True)
        try:
            dst = await open_database(target_url, source)
            try:
                books = Books(dst, settings)
                now = books.now()

                async def balance(store: Store, guild_id: int, user_id: int) -> Balance:
                    guild = await books.guild(store, guild_id)
                    return await books.balance(store, guild, user_id, now)

                report = await copy_database(src, dst, measure=balance)
            finally:
                await dst.close()
        finally:
            await src.close()
    say(render(report, source, describe_url(target_url)))
    return report


def render(report: CopyReport, source: Path, target: str) -> str:
    lines = [f"copied {source} → PostgreSQL {target}", ""]
    rows = [("table", "sqlite", "postgres")]
    rows += [(t.table, str(t.source), str(t.target)) for t in report.tables]
    lines += _columns(rows)
    if report.members:
        lines.append("")
        members = [("guild", "member", "balance in sqlite", "balance in postgres")]
        members += [
            (str(m.guild_id), str(m.user_id), _balance(m.source), _balance(m.target))
            for m in report.members
        ]
        lines += _columns(members)
    lines += ["", "every count and balance matches" if report.ok else "MISMATCH"]
    return "\n".join(lines)


def _balance(value: object) -> str:
    if not isinstance(value, Balance):
        return str(value)
    left = "unlimited" if value.available is None else f"{value.available} left"
    blocked = ", blocked" if value.blocked else ""
    return f"{left}, {value.used} used, {value.held} held, {value.bonus} bonus{blocked}"


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
