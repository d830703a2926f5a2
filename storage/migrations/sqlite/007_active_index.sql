-- The running jobs by id, for the walks at start (recovery spreads their reads page by
-- page): without it each page read every running job through (state, next_poll_at) and
-- sorted them, so 10,000 running jobs took a second of the database at every start.
CREATE INDEX jobs_active ON jobs (id) WHERE state IN ('SUBMITTING', 'QUEUED', 'PROCESSING');
