"""`python -m bot`: run the bot, force a command sync, check its health, or copy its SQLite
database into PostgreSQL."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.settings import Settings

DESCRIPTION = """\
A Discord bot that turns prompts and images into videos with the Vidu models of the
Novita AI API, within credit quotas that moderators set.

Configuration comes from environment variables or a .env file: DISCORD_TOKEN and
NOVITA_API_KEY are required (NOVITA_SIMULATE=1 needs no key and spends nothing); see
README.md for every setting."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", help="connect to Discord and serve commands (the default)")
    commands.add_parser(
        "sync",
        help="push the slash commands to Discord now, even if they look unchanged, then exit",
    )
    health = commands.add_parser(
        "health",
        help="exit 0 if this process's poller was alive recently (for HEALTHCHECK); run it "
        "with the process's settings (its PROCESS_NAME or SHARD_IDS, or HEALTH_FILE)",
    )
    health.add_argument("--max-age", type=float, default=120.0, help="seconds (default 120)")
    copy = commands.add_parser(
        "copy-database",
        help="copy the SQLite database (DATABASE_PATH) into an empty PostgreSQL database",
        description="Copy every job, quota, ledger row, setting and fact of the SQLite "
        "database into an empty PostgreSQL database (migrated first), keeping ids, in one "
        "transaction; then compare row counts and every member's balance on both sides. "
        "The SQLite file is only read. Stop the bot first.",
    )
    copy.add_argument(
        "--to", required=True, metavar="URL", help="postgresql://user:password@host:port/dbname"
    )
    copy.add_argument(
        "--from",
        dest="source",
        type=Path,
        metavar="PATH",
        help="the SQLite file (default: DATABASE_PATH)",
    )
    return parser.parse_args(argv)


def check_health(max_age: float) -> int:
    from bot.settings import load_settings

    settings = load_settings()
    name = settings.process_name  # the heartbeat is this process's own (HEALTH_FILE)
    try:
        beat = float(settings.health_file.read_text().strip())
    except (OSError, ValueError):
        print(f"unhealthy: {name}: no heartbeat in {settings.health_file}", file=sys.stderr)
        return 1
    age = time.time() - beat
    if age > max_age:
        print(f"unhealthy: {name}: last heartbeat {age:.0f} s ago", file=sys.stderr)
        return 1
    print(f"healthy: {name}: last heartbeat {age:.0f} s ago")
    return 0


def secrets_of(settings: Settings) -> list[str]:
    """What no log line may show: the token, the API key, the database password."""
    from storage import url_password

    secrets = [settings.discord_token.get_secret_value()]
    if settings.novita_api_key is not None:
        secrets.append(settings.novita_api_key.get_secret_value())
    password = url_password(settings.database_url_value or "")
    if password:
        secrets.append(password)
    return secrets


def copy_database(target_url: str, source: Path | None) -> int:
    from bot.settings import load_settings
    from storage import is_postgres_url

    if not is_postgres_url(target_url):
        print(
            "copy-database: --to must be a postgresql://user:password@host:port/dbname URL",
            file=sys.stderr,
        )
        return 2
    # Copying needs the database path and the quota defaults (to compare balances), not
    # Discord or the video API: their settings may be missing here.
    # Nor shards: copying serves none, and SHARD_IDS without DATABASE_URL would be refused.
    settings = load_settings(
        discord_token="unused by copy-database",
        novita_simulate=True,
        shard_ids=None,
        shard_count=None,
    )
    source = source or settings.database_path
    if not source.is_file():
        print(f"database error: there is no SQLite database at {source}", file=sys.stderr)
        return 2

    from bot.copying import copy_to_postgres
    from bot.logs import setup_logging
    from storage import StorageError, url_password

    setup_logging("WARNING", [p for p in (url_password(target_url),) if p])
    try:
        asyncio.run(copy_to_postgres(settings, source, target_url, print))
    except StorageError as error:
        print(f"database error: {error}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "health":
        return check_health(args.max_age)
    if args.command == "copy-database":
        return copy_database(args.to, args.source)

    from bot.settings import load_settings

    settings = load_settings()  # first: a bad setting stops us before anything else loads

    from bot.app import run_bot
    from bot.logs import setup_logging
    from bot.settings import ConfigurationError
    from storage import StorageError

    secrets = secrets_of(settings)
    setup_logging(settings.log_level, secrets, settings.process_name)
    try:
        asyncio.run(run_bot(settings, sync_only=args.command == "sync"))
    except StorageError as error:
        print(f"database error: {error}", file=sys.stderr)
        return 2
    except ConfigurationError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
