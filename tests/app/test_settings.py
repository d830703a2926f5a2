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
