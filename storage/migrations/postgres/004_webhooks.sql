-- The same as ../sqlite/004_webhooks.sql: when a webhook last named the job.
ALTER TABLE jobs ADD COLUMN webhook_at TEXT COLLATE "C";
