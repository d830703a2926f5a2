"""Configuration: one pydantic-settings model read from the environment and an optional `.env`.

Every knob has its environment variable named after the field in upper case
(`discord_token` ← `DISCORD_TOKEN`). Secrets are `SecretStr`, so they never show up in a
repr, a log line or a validation message.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

Period = Literal["day", "week", "month", "none"]


class ConfigurationError(Exception):
    """A setting that looked valid was refused when used (e.g. Discord refused the token);
    the message names it, and the bot stops with exit status 2."""


RESOLUTIONS = ("540p", "720p", "1080p")
# A process name goes into file names, log lines and metric labels: keep it plain.
PROCESS_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
UNSET_PATH = Path()  # a path setting left unset (or blank): derived from other settings
POSTGRES_SCHEMES = ("postgresql", "postgres")  # as storage.database accepts them


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        hide_input_in_errors=True,
    )

    # --- Discord -------------------------------------------------------------------------
    discord_token: SecretStr = Field(description="the bot token from the Developer Portal")
    dev_guild_id: int | None = Field(
        default=None, description="a guild id; commands are synced there instantly (development)"
    )
    shard_count: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="how many gateway shards the bot has in all (the same on every process)",
    )
    shard_ids: Annotated[tuple[int, ...] | None, NoDecode] = Field(
        default=None,
        description="the shards this process serves, e.g. 0,2 (unset: every shard)",
    )
    discord_api_base_url: AnyHttpUrl | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "discord_api_base_url", "discord_api_base", "discord_base_url"
        ),
        description="override of Discord's REST base URL (tests and self-hosted proxies only)",
    )

    # --- Video API -----------------------------------------------------------------------
    novita_api_key: SecretStr | None = Field(
        default=None, description="the Novita AI API key (not needed with NOVITA_SIMULATE=1)"
    )
    novita_base_url: AnyHttpUrl = Field(default=AnyHttpUrl("https://api.novita.ai"))
    novita_simulate: bool = Field(
        default=False,
        description="1 runs against the built-in simulator on loopback: no key, no money spent",
    )
    simulate_seconds: float = Field(
        default=20.0, ge=0, description="how long a simulated video takes to make"
    )
    api_submits_per_minute: int = Field(
        default=10, ge=1, le=6000, description="most video submissions sent a minute"
    )
    api_reads_per_minute: int = Field(
        default=60, ge=1, le=6000, description="most result reads (task-result) a minute"
    )
    api_requests_per_minute: int | None = Field(
        default=None,
        ge=2,
        le=12000,
        description="if set, most requests of both kinds together a minute (split between them)",
    )
    submit_timeout_seconds: float = Field(default=90.0, gt=0, le=600)
    request_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    max_video_bytes: int = Field(
        default=200 * 1024 * 1024, ge=1, description="never download a result larger than this"
    )

    # --- Webhooks (optional: polling works alone) ---------------------------------------
    webhook_public_url: AnyHttpUrl | None = Field(
        default=None,
        description="the address the video service can reach this bot at (https://…); unset: "
        "no webhooks, results are read by polling alone",
    )
    webhook_host: str = Field(default="0.0.0.0", description="where the webhook receiver listens")
    webhook_port: int = Field(default=8080, ge=1, le=65535)

    # --- Storage -------------------------------------------------------------------------
    database_path: Path = Field(
        default=Path("data/bot.sqlite3"),
        description="the SQLite file, used when DATABASE_URL is not set (one process only)",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description=(
            "postgresql://user:password@host:port/dbname: the PostgreSQL database that "
            "several bot processes share (unset: SQLite at DATABASE_PATH)"
        ),
    )
    health_file: Path = Field(
        default=UNSET_PATH,
        description=(
            "touched by the poller, read by `bot health` (unset: health-<PROCESS_NAME> "
            "in the folder of DATABASE_PATH, one per process)"
        ),
    )
    download_dir: Path = Field(
        default=Path("data/downloads"),
        description="where finished videos wait (briefly) on their way to Discord",
    )

    # --- Polling and delivery ------------------------------------------------------------
    poll_min_seconds: float = Field(default=3.0, gt=0)
    poll_max_seconds: float = Field(default=60.0, gt=0)
    off_peak_poll_seconds: float = Field(default=300.0, gt=0)
    poll_concurrency: int = Field(default=4, ge=1, le=64)
    job_timeout_minutes: float = Field(
        default=180.0, gt=0, description="a job with no terminal answer by then is EXPIRED"
    )
    off_peak_job_timeout_minutes: float = Field(default=50 * 60.0, gt=0)
    card_edit_interval_seconds: float = Field(default=5.0, ge=0)
    delivery_retry_seconds: float = Field(
        default=1.0,
        gt=0,
        description="the first wait after a failed post; each next one doubles (to 15 minutes)",
    )

    # --- Quota and prices ----------------------------------------------------------------
    price_table: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description=(
            "JSON: credits per second by model and resolution, e.g. "
            '{"vidu-q3-pro-i2v": {"540p": 4, "720p": 6, "1080p": 8}}; '
            "models left out keep the catalog's price"
        ),
    )
    off_peak_discount_percent: int = Field(default=50, ge=0, le=100)
    default_allowance: int = Field(default=100, ge=0, description="credits per period")
    default_period: Period = "week"
    default_max_concurrent_jobs: int = Field(default=2, ge=1, le=50)
    operator_daily_cap: int | None = Field(
        default=None, ge=0, description="credits all guilds together may spend per UTC day"
    )

    # --- Operating ---------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    process_name: str = Field(
        default="",
        description=(
            "this process's name in log lines, metrics and its health file (unset: "
            "shard-0-2 for SHARD_IDS=0,2, else bot)"
        ),
    )
    lease_seconds: float = Field(
        default=30.0,
        ge=0.5,
        le=3600,
        description=(
            "how long a job stays with the process working on it without word from it: "
            "the longest wait before the others take over the jobs of a process that died"
        ),
    )
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="serve Prometheus metrics on /metrics here"
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="the address /metrics listens on (0.0.0.0: every interface)",
    )

    @field_validator("price_table")
    @classmethod
    def _prices_are_sane(cls, table: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        for model, prices in table.items():
            for resolution, price in prices.items():
                if resolution not in RESOLUTIONS:
                    raise ValueError(
                        f"{model}: resolution {resolution!r} is not one of {', '.join(RESOLUTIONS)}"
                    )
                if price < 0:
                    raise ValueError(f"{model} {resolution}: a price cannot be negative")
        return table

    @field_validator(
        "dev_guild_id",
        "operator_daily_cap",
        "api_requests_per_minute",
        "database_url",
        "webhook_public_url",
        "shard_count",
        "shard_ids",
        "metrics_port",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("process_name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        value = value.strip()
        if value and not re.fullmatch(PROCESS_NAME_PATTERN, value):
            raise ValueError(
                "use at most 63 letters, digits, '.', '_' or '-', starting with a letter or "
                "digit (it names files and metric series)"
            )
        return value

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, int):
            return (value,)
        if not isinstance(value, str):
            return value
        if not value.strip():
            return None
        parts = [part.strip() for part in value.split(",")]
        if not all(re.fullmatch(r"\d+", part) for part in parts):
            raise ValueError("must be shard numbers separated by commas, e.g. 0,2")
        return tuple(int(part) for part in parts)

    @field_validator("shard_ids")
    @classmethod
    def _each_shard_once(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("names no shard; leave it unset to serve every shard")
        if any(shard < 0 for shard in value):
            raise ValueError("shard numbers start at 0")
        twice = sorted({shard for shard in value if value.count(shard) > 1})
        if twice:
            raise ValueError(f"names shard {', '.join(map(str, twice))} more than once")
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        # The value may carry a password: the message never repeats it.
        if value is None:
            return None
        try:
            parts = urlsplit(value.get_secret_value().strip())
            _ = parts.port  # raises for a port that is not a number
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in POSTGRES_SCHEMES:
            raise ValueError(
                "must be a postgresql://user:password@host:port/dbname URL "
                "(postgres:// works too); leave it unset to use SQLite at DATABASE_PATH"
            )
        return SecretStr(value.get_secret_value().strip())

    @property
    def database_url_value(self) -> str | None:
        """DATABASE_URL in clear, for the one place that connects (None: SQLite)."""
        return None if self.database_url is None else self.database_url.get_secret_value()

    @property
    def discord_rest_base(self) -> str | None:
        """The REST base with its `/api/vN` part, whether or not the setting included it."""
        if self.discord_api_base_url is None:
            return None
        base = str(self.discord_api_base_url).rstrip("/")
        return base if re.search(r"/api/v\d+$", base) else f"{base}/api/v10"

    @model_validator(mode="after")
    def _key_unless_simulated(self) -> Settings:
        if not self.novita_simulate and (
            self.novita_api_key is None or not self.novita_api_key.get_secret_value().strip()
        ):
            raise ValueError("NOVITA_API_KEY is required unless NOVITA_SIMULATE=1")
        if self.poll_min_seconds > self.poll_max_seconds:
            raise ValueError("POLL_MIN_SECONDS must not exceed POLL_MAX_SECONDS")
        self._check_shards()
        if not self.process_name:
            self.process_name = self.default_process_name
        if self.health_file == UNSET_PATH:
            self.health_file = self.database_path.parent / f"health-{self.process_name}"
        return self

    def _check_shards(self) -> None:
        if self.shard_ids is None:
            return
        if self.shard_count is None:
            raise ValueError(
                "SHARD_IDS needs SHARD_COUNT: how many shards the bot has in all, "
                "the same on every process"
            )
        outside = [shard for shard in self.shard_ids if shard >= self.shard_count]
        if outside:
            raise ValueError(
                f"SHARD_IDS: shard {', '.join(map(str, outside))} is outside "
                f"0…{self.shard_count - 1} (SHARD_COUNT={self.shard_count})"
            )
        if self.database_url is None and len(self.shard_ids) < self.shard_count:
            raise ValueError(
                f"SHARD_IDS={','.join(map(str, self.shard_ids))} serves only some of the "
                f"{self.shard_count} shards, so other processes must serve the rest, but "
                "SQLite is the one-process store: set DATABASE_URL to the PostgreSQL "
                "database every process shares (or leave SHARD_IDS unset)"
            )

    @property
    def default_process_name(self) -> str:
        """`shard-0-2` for a process serving shards 0 and 2; `bot` for one serving them all.

        Not the host name: a container's changes with every re-creation, and a metric
        series or a health file should keep its name across restarts."""
        if self.shard_ids is None:
            return "bot"
        return "shard-" + "-".join(str(shard) for shard in self.shard_ids)


def describe_error(error: ValidationError) -> str:
    """One line per bad setting, naming the environment variable and what it expects.

    The input value is never echoed (it may be a secret).
    """
    lines = []
    for item in error.errors(include_input=False, include_url=False):
        location = [str(part) for part in item.get("loc", ()) if part != "__root__"]
        message = str(item.get("msg", "invalid value"))
        message = message.removeprefix("Value error, ")
        if not location:
            lines.append(message)
            continue
        variable = location[0].upper()
        detail = f" ({'.'.join(location[1:])})" if len(location) > 1 else ""
        if item.get("type") == "missing":
            field = Settings.model_fields.get(location[0])
            hint = f": {field.description}" if field and field.description else ""
            lines.append(f"{variable} is not set; it is required{hint}")
        else:
            lines.append(f"{variable}{detail}: {message}")
    return "; ".join(lines)


def describe_source_error(error: SettingsError) -> str:
    """A value the settings source could not decode (e.g. PRICE_TABLE that is not JSON)."""
    found = re.search(r'field "(\w+)"', str(error))
    variable = found.group(1).upper() if found else "a setting"
    return f"{variable}: is not valid JSON"


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, or stop the process with one clear line and exit status 2."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        print(f"configuration error: {describe_error(error)}", file=sys.stderr)
        raise SystemExit(2) from None
    except SettingsError as error:
        print(f"configuration error: {describe_source_error(error)}", file=sys.stderr)
        raise SystemExit(2) from None
