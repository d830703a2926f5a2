-- The same as ../sqlite/007_active_index.sql: the running jobs by id, for recovery's walk.
CREATE INDEX jobs_active ON jobs (id) WHERE state IN ('SUBMITTING', 'QUEUED', 'PROCESSING');
