"""compose.yaml, read as Compose would (no Docker engine here): PostgreSQL with a healthcheck
and a volume, and three bot processes of one image, one shard each, whose settings the bot
itself accepts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "compose-test-password"
BOTS = ("bot-0", "bot-1", "bot-2")


def interpolate(text: str) -> str:
    """Compose's `${VAR:?message}`, with the variables a deployment's .env would give."""
    given = {"POSTGRES_PASSWORD": PASSWORD}

    def value(match: re.Match[str]) -> str:
        return given[match.group(1)]

    return re.sub(r"\$\{(\w+)(?::\?[^}]*)?\}", value, text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(interpolate((ROOT / "compose.yaml").read_text()))
    assert isinstance(loaded, dict)
    return loaded


def image_environment() -> dict[str, str]:
    """The ENV the Dockerfile bakes into the image."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(re.findall(r"(\w+)=(\S+)", line))
    return env


def test_postgres_has_a_healthcheck_and_keeps_its_data_in_a_volume(
    compose: dict[str, Any],
) -> None:
    db = compose["services"]["db"]
    assert db["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volume, _, target = db["volumes"][0].partition(":")
    assert volume in compose["volumes"] and target == "/var/lib/postgresql/data"
    assert db["environment"]["POSTGRES_PASSWORD"] == PASSWORD
    assert "ports" not in db  # reached by the bots only, on Compose's own network


def test_three_bots_of_one_image_serve_one_shard_each_of_three(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert sorted(name for name in services if name != "db") == list(BOTS)
    bots = [services[name] for name in BOTS]
    assert {(bot["build"], bot["image"]) for bot in bots} == {(".", "vidu-bot:latest")}
    assert [bot["environment"]["SHARD_COUNT"] for bot in bots] == ["3", "3", "3"]
    assert [bot["environment"]["SHARD_IDS"] for bot in bots] == ["0", "1", "2"]
    for bot in bots:
        assert bot["env_file"] == ".env"  # the token and the key
        assert bot["restart"] == "unless-stopped"
        assert bot["depends_on"] == {"db": {"condition": "service_healthy"}}
        url = urlsplit(bot["environment"]["DATABASE_URL"])
        db = services["db"]["environment"]
        assert (url.scheme, url.hostname, url.port) == ("postgresql", "db", 5432)
        assert (url.username, url.password) == (db["POSTGRES_USER"], PASSWORD)
        assert url.path == "/" + db["POSTGRES_DB"]
    published = [bot["ports"][0] for bot in bots]
    assert published == ["127.0.0.1:9100:9100", "127.0.0.1:9101:9100", "127.0.0.1:9102:9100"]


def test_the_bot_accepts_each_process_settings_as_the_image_runs_them(
    compose: dict[str, Any],
) -> None:
    image = image_environment()
    assert "HEALTH_FILE" not in image  # else every container's heartbeat has one name
    seen = []
    for name in BOTS:
        environment = {**image, **compose["services"][name]["environment"]}
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            discord_token="from .env",
            novita_api_key="from .env",
            **{key.lower(): value for key, value in environment.items()},
        )
        assert settings.shard_count == 3 and settings.shard_ids is not None
        assert settings.database_url_value is not None
        assert (settings.metrics_host, settings.metrics_port) == ("0.0.0.0", 9100)
        shard = settings.shard_ids[0]
        assert settings.process_name == f"shard-{shard}"
        assert settings.health_file == Path(f"/data/health-shard-{shard}")
        seen.extend(settings.shard_ids)
    assert sorted(seen) == [0, 1, 2]  # every shard served, none twice
