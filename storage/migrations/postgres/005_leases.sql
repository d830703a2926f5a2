-- The same as ../sqlite/005_leases.sql: job leases, live processes, shared API budgets.
ALTER TABLE jobs ADD COLUMN lease_owner TEXT COLLATE "C";
ALTER TABLE jobs ADD COLUMN lease_until TEXT COLLATE "C";
CREATE INDEX jobs_by_lease ON jobs (lease_owner, lease_until) WHERE lease_owner IS NOT NULL;

CREATE TABLE processes (
    owner   TEXT COLLATE "C" PRIMARY KEY,
    seen_at TEXT COLLATE "C" NOT NULL
);

CREATE TABLE api_requests (
    budget TEXT NOT NULL,
    at     DOUBLE PRECISION NOT NULL
);
CREATE INDEX api_requests_by_budget ON api_requests (budget, at);

CREATE TABLE api_budgets (
    budget       TEXT PRIMARY KEY,
    paused_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    slowed_at    DOUBLE PRECISION,
    slowed_to    DOUBLE PRECISION
);
