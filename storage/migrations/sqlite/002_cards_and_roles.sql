-- Posting the card becomes as recoverable as posting the video, delivery remembers when a
-- post may have landed unseen, the read schedule keeps its memory with the job, and
-- guilds may give roles an allowance of their own.

-- 'pending': to be posted (or found again, if its post was answered but the answer lost);
-- 'posted': card_message_id names it; 'none': it cannot be posted here, so the member is
-- told of the job by direct message. Jobs from before had a card or were told by DM.
ALTER TABLE jobs ADD COLUMN card_state TEXT NOT NULL DEFAULT 'posted'
    CHECK (card_state IN ('pending', 'posted', 'none'));
UPDATE jobs SET card_state = 'none' WHERE card_message_id IS NULL;
CREATE INDEX jobs_card_pending ON jobs (created_at) WHERE card_state = 'pending';

-- 1 from a change of state until the member has been shown it (the card edited, or the
-- ending told by DM): a stop in between leaves it to be shown after the restart.
ALTER TABLE jobs ADD COLUMN card_stale INTEGER NOT NULL DEFAULT 0 CHECK (card_stale IN (0, 1));
CREATE INDEX jobs_card_stale ON jobs (updated_at) WHERE card_stale = 1;

-- When a post of the video first broke off without an answer (it may have landed).
ALTER TABLE jobs ADD COLUMN delivery_uncertain_at TEXT;

-- What the read schedule knows of the job between reads (JSON).
ALTER TABLE jobs ADD COLUMN read_state TEXT NOT NULL DEFAULT '{}';

-- A role's allowance per period, instead of the server default, for members holding it.
CREATE TABLE role_allowances (
    guild_id   INTEGER NOT NULL,
    role_id    INTEGER NOT NULL,
    allowance  INTEGER NOT NULL CHECK (allowance >= 0),
    updated_at TEXT NOT NULL,
    PRIMARY KEY (guild_id, role_id)
);
