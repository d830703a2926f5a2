-- A job's give-up time matters only while it runs: it is cleared when the job leaves the
-- active states, and the index holds only the jobs that have one. The give-up check then
-- reads through this index alone (no condition on `state` for the planner to weigh, which
-- without statistics made SQLite read every active job each tick instead).
UPDATE jobs SET give_up_at = NULL WHERE state NOT IN ('SUBMITTING', 'QUEUED', 'PROCESSING');
DROP INDEX jobs_give_up;
CREATE INDEX jobs_give_up ON jobs (give_up_at) WHERE give_up_at IS NOT NULL;
