-- The same as ../sqlite/002_cards_and_roles.sql: cards as recoverable as videos, posts that
-- may have landed unseen, the read schedule's memory, and role allowances.

ALTER TABLE jobs ADD COLUMN card_state TEXT NOT NULL DEFAULT 'posted'
    CHECK (card_state IN ('pending', 'posted', 'none'));
UPDATE jobs SET card_state = 'none' WHERE card_message_id IS NULL;
CREATE INDEX jobs_card_pending ON jobs (created_at) WHERE card_state = 'pending';

-- 1 from a change of state until the member has been shown it (the card edited, or the
-- ending told by DM): a stop in between leaves it to be shown after the restart.
ALTER TABLE jobs ADD COLUMN card_stale INTEGER NOT NULL DEFAULT 0 CHECK (card_stale IN (0, 1));
CREATE INDEX jobs_card_stale ON jobs (updated_at) WHERE card_stale = 1;

ALTER TABLE jobs ADD COLUMN delivery_uncertain_at TEXT COLLATE "C";

ALTER TABLE jobs ADD COLUMN read_state TEXT NOT NULL DEFAULT '{}';

CREATE TABLE role_allowances (
    guild_id   BIGINT NOT NULL,
    role_id    BIGINT NOT NULL,
    allowance  BIGINT NOT NULL CHECK (allowance >= 0),
    updated_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (guild_id, role_id)
);
