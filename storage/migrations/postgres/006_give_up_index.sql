-- The same as ../sqlite/006_give_up_index.sql: give-up times only on running jobs.
UPDATE jobs SET give_up_at = NULL WHERE state NOT IN ('SUBMITTING', 'QUEUED', 'PROCESSING');
DROP INDEX jobs_give_up;
CREATE INDEX jobs_give_up ON jobs (give_up_at) WHERE give_up_at IS NOT NULL;
