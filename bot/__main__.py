"""`python -m bot`: run the bot, force a command sync, or check its health."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
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
        "health", help="exit 0 if the running bot's poller was alive recently (for HEALTHCHECK)"
    )
    health.add_argument("--max-age", type=float, default=120.0, help="seconds (default 120)")
    return parser.parse_args(argv)


def check_health(max_age: float) -> int:
    from bot.settings import load_settings

    settings = load_settings()
    try:
        beat = float(settings.health_file.read_text().strip())
    except (OSError, ValueError):
        print(f"unhealthy: no heartbeat in {settings.health_file}", file=sys.stderr)
        return 1
    age = time.time() - beat
    if age > max_age:
        print(f"unhealthy: last heartbeat {age:.0f} s ago", file=sys.stderr)
        return 1
    print(f"healthy: last heartbeat {age:.0f} s ago")
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "health":
        return check_health(args.max_age)

    from bot.settings import load_settings

    settings = load_settings()  # first: a bad setting stops us before anything else loads

    from bot.app import run_bot
    from bot.logs import setup_logging
    from bot.settings import ConfigurationError
    from storage import StorageError

    secrets = secrets_of(settings)
    setup_logging(settings.log_level, secrets)
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
