-- When a webhook last named the job (NULL: none came). A webhook is only a hint, but the
-- bot learns from these whether webhooks arrive at all, and reads less while they do.
ALTER TABLE jobs ADD COLUMN webhook_at TEXT;
