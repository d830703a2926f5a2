# syntax=docker/dockerfile:1
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_PATH=/data/bot.sqlite3 \
    DOWNLOAD_DIR=/data/downloads

RUN groupadd --gid 10001 bot && useradd --create-home --uid 10001 --gid 10001 bot \
    && mkdir /data && chown bot:bot /data

WORKDIR /app

# Dependencies first, in a layer of their own: it is rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
RUN mkdir bot cogs storage \
    && pip install . \
    && pip uninstall --yes vidu-discord-bot

COPY bot ./bot
COPY cogs ./cogs
COPY storage ./storage

USER 10001:10001
VOLUME ["/data"]

# This container's own poller: its heartbeat is /data/health-<PROCESS_NAME> (beside DATABASE_PATH).
HEALTHCHECK --interval=60s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-m", "bot", "health"]

ENTRYPOINT ["python", "-m", "bot"]
CMD ["run"]
