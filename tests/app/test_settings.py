"""Settings: a bad or missing variable stops start-up with one line, exit 2, no secret shown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SECRET_TOKEN = "discord-token-6b1f0c9a"
SECRET_KEY = "novita-key-93c2d7e1"
SECRET_DB_PASSWORD = "db-password-4f0e2b"


def run_bot(env: dict[str, str], tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "NOVITA_"))}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,  # no .env there
        env={**clean, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "variable", "expected"),
    [
        ({"NOVITA_API_KEY": SECRET_KEY}, "DISCORD_TOKEN", "is not set"),
        ({"DISCORD_TOKEN": SECRET_TOKEN}, "NOVITA_API_KEY", "required unless NOVITA_SIMULATE=1"),
        (
            {
                "DISCORD_TOKEN": SECRET_TOKEN,
                "NOVITA_API_KEY": SECRET_KEY,
                "POLL_CONCURRENCY": "many",
            },
            "POLL_CONCURRENCY",
            "valid integer",
        ),
        (
            {"DISCORD_TOKEN": SECRET_TOKEN, "NOVITA_SIMULATE": "1", "DEFAULT_PERIOD": "fortnight"},
            "DEFAULT_PERIOD",
            "'day', 'week', 'month' or 'none'",
        ),
        (
            {
                "DISCORD_TOKEN": SECRET_TOKEN,
                "NOVITA_SIMULATE": "1",
                "PRICE_TABLE": '{"m": {"4k": 1}}',
            },
            "PRICE_TABLE",
            "is not one of 540p, 720p, 1080p",
        ),
        (
            {
                "DISCORD_TOKEN": SECRET_TOKEN,
                "NOVITA_API_KEY": SECRET_KEY,
                "NOVITA_BASE_URL": "nope",
            },
            "NOVITA_BASE_URL",
            "URL",
        ),
        (
            {
                "DISCORD_TOKEN": SECRET_TOKEN,
                "NOVITA_SIMULATE": "1",
                "DATABASE_URL": f"mysql://bot:{SECRET_DB_PASSWORD}@db.example/bot",
            },
            "DATABASE_URL",
            "must be a postgresql://user:password@host:port/dbname URL",
        ),
    ],
)
def test_bad_setting_stops_with_one_line(
    tmp_path: Path, env: dict[str, str], variable: str, expected: str
) -> None:
    result = run_bot(env, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert expected in lines[0]
    assert "Traceback" not in result.stderr
    for secret in (SECRET_TOKEN, SECRET_KEY, SECRET_DB_PASSWORD):
        assert secret not in result.stderr + result.stdout


SIMULATED = {"DISCORD_TOKEN": SECRET_TOKEN, "NOVITA_SIMULATE": "1"}
ON_POSTGRES = {**SIMULATED, "DATABASE_URL": f"postgresql://bot:{SECRET_DB_PASSWORD}@db/vidu"}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({**ON_POSTGRES, "SHARD_IDS": "0,2"}, "SHARD_IDS needs SHARD_COUNT"),
        (
            {**ON_POSTGRES, "SHARD_COUNT": "3", "SHARD_IDS": "1,3"},
            "SHARD_IDS: shard 3 is outside 0…2",
        ),
        ({**ON_POSTGRES, "SHARD_COUNT": "3", "SHARD_IDS": "2,0,2"}, "names shard 2 more than once"),
        (
            {**ON_POSTGRES, "SHARD_COUNT": "2", "SHARD_IDS": "0;1"},
            "shard numbers separated by commas",
        ),
        (
            {**ON_POSTGRES, "SHARD_COUNT": "2", "SHARD_IDS": "-1"},
            "shard numbers separated by commas",
        ),
        ({**ON_POSTGRES, "SHARD_COUNT": "0"}, "SHARD_COUNT"),
        ({**SIMULATED, "PROCESS_NAME": "web 1"}, "PROCESS_NAME: use at most 63 letters"),
        ({**SIMULATED, "METRICS_PORT": "70000"}, "METRICS_PORT"),
        ({**SIMULATED, "PRICE_TABLE": "{not json"}, "PRICE_TABLE: is not valid JSON"),
    ],
)
def test_bad_shard_and_operating_settings_stop_with_one_line(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    result = run_bot(env, tmp_path, "run")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("configuration error: ")
    assert expected in lines[0]
    assert SECRET_DB_PASSWORD not in result.stderr + result.stdout


def test_some_shards_on_sqlite_are_refused_pointing_at_database_url(tmp_path: Path) -> None:
    result = run_bot({**SIMULATED, "SHARD_COUNT": "3", "SHARD_IDS": "0,2"}, tmp_path, "run")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "SHARD_IDS=0,2 serves only some of the 3 shards" in lines[0]
    assert "SQLite is the one-process store" in lines[0]
    assert "set DATABASE_URL" in lines[0]
    assert not (tmp_path / "data").exists()  # refused before anything was opened


def settings_of(**values: object) -> Settings:
    return Settings(_env_file=None, discord_token="t", novita_simulate=True, **values)  # type: ignore[arg-type]


def test_shards_are_optional_and_every_shard_may_sit_in_one_process_on_sqlite() -> None:
    alone = settings_of()
    assert (alone.shard_count, alone.shard_ids, alone.process_name) == (None, None, "bot")
    every = settings_of(shard_count="2", shard_ids="1, 0")
    assert (every.shard_count, every.shard_ids) == (2, (1, 0))
    fixed = settings_of(shard_count="4")  # all four, here
    assert (fixed.shard_count, fixed.shard_ids, fixed.process_name) == (4, None, "bot")
    blank = settings_of(shard_count="", shard_ids=" ", process_name="", metrics_port="")
    assert (blank.shard_ids, blank.process_name, blank.metrics_port) == (None, "bot", None)


def test_the_process_name_and_the_health_file_are_per_process(tmp_path: Path) -> None:
    shared = {"database_url": "postgresql://bot@db/vidu", "database_path": tmp_path / "x.db"}
    first = settings_of(shard_count=3, shard_ids="0,2", **shared)
    second = settings_of(shard_count=3, shard_ids="1", **shared)
    assert (first.process_name, second.process_name) == ("shard-0-2", "shard-1")
    assert first.health_file == tmp_path / "health-shard-0-2"
    assert second.health_file == tmp_path / "health-shard-1"
    named = settings_of(process_name="eu-west.1", **shared)
    assert named.health_file == tmp_path / "health-eu-west.1"
    assert settings_of().health_file == Path("data/health-bot")
    chosen = settings_of(shard_count=3, shard_ids="1", health_file=tmp_path / "hb", **shared)
    assert (chosen.process_name, chosen.health_file) == ("shard-1", tmp_path / "hb")


def test_metrics_listen_on_loopback_unless_told_otherwise() -> None:
    assert (settings_of().metrics_port, settings_of().metrics_host) == (None, "127.0.0.1")
    opened = settings_of(metrics_port="9100", metrics_host="0.0.0.0")
    assert (opened.metrics_port, opened.metrics_host) == (9100, "0.0.0.0")


def test_secrets_do_not_show_in_repr() -> None:
    settings = Settings(_env_file=None, discord_token=SECRET_TOKEN, novita_api_key=SECRET_KEY)  # type: ignore[call-arg]
    text = repr(settings) + str(settings) + settings.model_dump_json()
    assert SECRET_TOKEN not in text
    assert SECRET_KEY not in text
    assert settings.discord_token.get_secret_value() == SECRET_TOKEN


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_database_url_selects_postgresql_and_hides_its_password(scheme: str) -> None:
    url = f"{scheme}://bot:{SECRET_DB_PASSWORD}@db.example:5432/vidu"
    settings = Settings(_env_file=None, discord_token="t", novita_simulate=True, database_url=url)  # type: ignore[call-arg]
    assert settings.database_url_value == url
    text = repr(settings) + str(settings) + settings.model_dump_json()
    assert SECRET_DB_PASSWORD not in text


def test_a_blank_database_url_means_sqlite() -> None:
    settings = Settings(_env_file=None, discord_token="t", novita_simulate=True, database_url="")  # type: ignore[call-arg]
    assert settings.database_url is None and settings.database_url_value is None


def test_a_database_that_does_not_answer_stops_the_bot_with_one_line(tmp_path: Path) -> None:
    env = {
        "DISCORD_TOKEN": SECRET_TOKEN,
        "NOVITA_SIMULATE": "1",
        "DATABASE_URL": f"postgresql://bot:{SECRET_DB_PASSWORD}@127.0.0.1:1/vidu",
    }
    result = run_bot(env, tmp_path, "run")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("database error: cannot connect to the PostgreSQL database")
    assert "127.0.0.1:1/vidu" in lines[0]
    assert SECRET_DB_PASSWORD not in result.stderr + result.stdout


def test_simulation_needs_no_key() -> None:
    settings = Settings(_env_file=None, discord_token="t", novita_simulate=True)  # type: ignore[call-arg]
    assert settings.novita_api_key is None
    assert str(settings.database_path) == "data/bot.sqlite3"


def test_env_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DISCORD_TOKEN", "NOVITA_API_KEY", "NOVITA_SIMULATE"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text(
        "DISCORD_TOKEN=from-file\nNOVITA_SIMULATE=1\nDEFAULT_ALLOWANCE=7\n"
    )
    monkeypatch.chdir(tmp_path)
    settings = Settings()  # type: ignore[call-arg]
    assert settings.discord_token.get_secret_value() == "from-file"
    assert settings.default_allowance == 7


def test_help_says_what_it_does(tmp_path: Path) -> None:
    result = run_bot({}, tmp_path, "--help")
    assert result.returncode == 0
    assert "Discord bot" in result.stdout and "sync" in result.stdout


def test_copy_database_serves_no_shards_so_shard_settings_do_not_stop_it(tmp_path: Path) -> None:
    env = {**SIMULATED, "SHARD_COUNT": "3", "SHARD_IDS": "1"}  # and no DATABASE_URL
    result = run_bot(env, tmp_path, "copy-database", "--to", "postgresql://bot@127.0.0.1:1/v")
    assert result.returncode == 2
    assert result.stderr.startswith("database error: there is no SQLite database"), result.stderr
