-- Work shared by leases: a process reads, posts or redraws a job only while it holds the
-- job's lease (its owner and an expiry it renews while working). A process that dies
-- loses its leases when they expire, and the others carry on with its jobs.
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until TEXT;
-- A process's leases, found without reading every job (a job's lease is cleared when it ends).
CREATE INDEX jobs_by_lease ON jobs (lease_owner, lease_until) WHERE lease_owner IS NOT NULL;

-- Every running process says it is alive here (a row per process start, renewed while it
-- runs): recovery after a start skips what only a stop of every process needs.
CREATE TABLE processes (
    owner   TEXT PRIMARY KEY,   -- PROCESS_NAME/boot id
    seen_at TEXT NOT NULL
);

-- The video API's per-minute budgets, shared by every process of a deployment: the
-- requests of the last window, and each budget's pause and slow-down after a 429.
CREATE TABLE api_requests (
    budget TEXT NOT NULL,
    at     REAL NOT NULL         -- seconds since the epoch, by the database's clock
);
CREATE INDEX api_requests_by_budget ON api_requests (budget, at);

CREATE TABLE api_budgets (
    budget       TEXT PRIMARY KEY,
    paused_until REAL NOT NULL DEFAULT 0,
    slowed_at    REAL,
    slowed_to    REAL
);
