-- Initial schema, SQLite (../postgres/001_initial.sql is its twin: keep them in step).
-- Times are ISO-8601 UTC strings of one fixed width
-- ("2025-01-31T23:59:59.000000+00:00"), so text order is time order.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- A guild's own settings. NULL in allowance/period/max_concurrent means "the operator's
-- default from settings", so changing the default reaches every guild that never chose.
CREATE TABLE guild_settings (
    guild_id         INTEGER PRIMARY KEY,
    allowance        INTEGER CHECK (allowance IS NULL OR allowance >= 0),
    period           TEXT CHECK (period IS NULL OR period IN ('day', 'week', 'month', 'none')),
    max_concurrent   INTEGER CHECK (max_concurrent IS NULL OR max_concurrent >= 1),
    allowed_channels TEXT NOT NULL DEFAULT '[]',   -- JSON list of channel ids; empty = all
    enabled_models   TEXT,                         -- JSON list of model names; NULL = all
    daily_cap        INTEGER CHECK (daily_cap IS NULL OR daily_cap >= 0),
    updated_at       TEXT NOT NULL
);

-- A member's quota settings (never balances: those are derived from the ledger).
CREATE TABLE member_quota (
    guild_id   INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    allowance  INTEGER CHECK (allowance IS NULL OR allowance >= 0),  -- NULL = guild default
    unlimited  INTEGER NOT NULL DEFAULT 0 CHECK (unlimited IN (0, 1)),
    blocked    INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
    updated_at TEXT NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

CREATE TABLE jobs (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id             INTEGER NOT NULL,
    channel_id           INTEGER NOT NULL,
    user_id              INTEGER NOT NULL,
    model                TEXT NOT NULL,
    params               TEXT NOT NULL,                -- JSON: the API request body
    inputs               TEXT NOT NULL DEFAULT '[]',   -- JSON: list of input references
    price                INTEGER NOT NULL CHECK (price >= 0),
    off_peak             INTEGER NOT NULL DEFAULT 0 CHECK (off_peak IN (0, 1)),
    state                TEXT NOT NULL CHECK (state IN (
                             'SUBMITTING', 'QUEUED', 'PROCESSING', 'SUCCEEDED', 'DELIVERED',
                             'FAILED', 'REJECTED', 'LOST', 'UNDELIVERABLE', 'EXPIRED')),
    task_id              TEXT UNIQUE,
    progress             INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    eta                  INTEGER,
    next_poll_at         TEXT,
    attempts             INTEGER NOT NULL DEFAULT 0,
    card_message_id      INTEGER,
    result_url           TEXT,
    result_expires_at    TEXT,
    failure_reason       TEXT,
    delivered_message_id INTEGER,
    reroll_of            INTEGER REFERENCES jobs (id),
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    finished_at          TEXT
);

CREATE INDEX jobs_by_state_next_poll ON jobs (state, next_poll_at);
CREATE INDEX jobs_by_member ON jobs (guild_id, user_id, created_at);
CREATE INDEX jobs_by_guild ON jobs (guild_id, created_at);

-- The append-only ledger: the single source of truth for every balance.
-- hold/commit/release carry a pool ('period' or 'bonus') and a job; commit and release
-- mirror the hold of the same job and pool exactly once.
CREATE TABLE ledger (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id   INTEGER NOT NULL,
    user_id    INTEGER,            -- NULL for guild-wide rows ('default')
    job_id     INTEGER REFERENCES jobs (id),
    kind       TEXT NOT NULL CHECK (kind IN (
                   'hold', 'commit', 'release', 'grant', 'set', 'reset',
                   'block', 'unblock', 'default')),
    pool       TEXT CHECK (pool IS NULL OR pool IN ('period', 'bonus')),
    amount     INTEGER NOT NULL,
    actor      TEXT NOT NULL,      -- 'system' or the acting user's id
    reason     TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    CHECK ((kind IN ('hold', 'commit', 'release')) = (job_id IS NOT NULL AND pool IS NOT NULL)),
    CHECK (kind NOT IN ('hold', 'commit', 'release', 'reset') OR amount >= 0)
);

CREATE INDEX ledger_by_member ON ledger (guild_id, user_id, kind, created_at);
CREATE INDEX ledger_by_time ON ledger (kind, created_at);
CREATE INDEX ledger_by_job ON ledger (job_id, pool, kind);
CREATE UNIQUE INDEX ledger_one_hold ON ledger (job_id, pool) WHERE kind = 'hold';
CREATE UNIQUE INDEX ledger_one_settlement ON ledger (job_id, pool)
    WHERE kind IN ('commit', 'release');

CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only');
END;

CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only');
END;
