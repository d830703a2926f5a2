-- Costs that do not grow with history, and what the read schedule needs.

-- What the bot learns durations by: the job's kind ("model|resolution|off-peak|seconds").
ALTER TABLE jobs ADD COLUMN bucket TEXT;

-- How long the service took to make the latest videos of each kind (a JSON list of
-- seconds, newest last, a few dozen at most): one row per kind, whatever the history.
CREATE TABLE learned_durations (
    bucket     TEXT PRIMARY KEY,
    samples    TEXT NOT NULL DEFAULT '[]',
    updated_at TEXT NOT NULL
);

-- When an unfinished job is given up (its credits returned): found by an index, not by
-- scanning every active job each tick.
ALTER TABLE jobs ADD COLUMN give_up_at TEXT;
CREATE INDEX jobs_give_up ON jobs (give_up_at)
    WHERE state IN ('SUBMITTING', 'QUEUED', 'PROCESSING');

-- The next read's priority (0: the job is likely done by then; such reads go first when
-- the read budget is short) and the best guess of the end, for the card.
ALTER TABLE jobs ADD COLUMN read_priority INTEGER NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN expected_at TEXT;

-- The unguessable part of the job's webhook address (NULL: no webhook asked for).
ALTER TABLE jobs ADD COLUMN webhook_token TEXT;
CREATE UNIQUE INDEX jobs_by_webhook ON jobs (webhook_token) WHERE webhook_token IS NOT NULL;

-- The newest jobs of a guild (typical price) and a member's running jobs, by index.
CREATE INDEX jobs_by_guild_id ON jobs (guild_id, id);
CREATE INDEX jobs_active_by_member ON jobs (guild_id, user_id)
    WHERE state IN ('SUBMITTING', 'QUEUED', 'PROCESSING');

-- Running sums of each member's ledger rows over all time, kept by the database itself in
-- the same statement as every ledger row, so a balance costs the same with ten rows or ten
-- thousand. The ledger stays the source of truth: a test recomputes these from it.
CREATE TABLE member_totals (
    guild_id         INTEGER NOT NULL,
    user_id          INTEGER NOT NULL,
    unsettled        INTEGER NOT NULL DEFAULT 0,  -- held, both pools, not yet settled
    bonus_granted    INTEGER NOT NULL DEFAULT 0,
    bonus_unsettled  INTEGER NOT NULL DEFAULT 0,
    bonus_committed  INTEGER NOT NULL DEFAULT 0,
    period_unsettled INTEGER NOT NULL DEFAULT 0,  -- these three: the all-time window
    period_committed INTEGER NOT NULL DEFAULT 0,
    period_excused   INTEGER NOT NULL DEFAULT 0,  -- committed before the latest reset
    PRIMARY KEY (guild_id, user_id)
);

INSERT INTO member_totals
SELECT l.guild_id, l.user_id,
    SUM(CASE l.kind WHEN 'hold' THEN l.amount WHEN 'commit' THEN -l.amount
                    WHEN 'release' THEN -l.amount ELSE 0 END),
    SUM(CASE WHEN l.kind = 'grant' THEN l.amount ELSE 0 END),
    SUM(CASE WHEN l.pool = 'bonus' THEN (CASE l.kind WHEN 'hold' THEN l.amount
                                                     ELSE -l.amount END) ELSE 0 END),
    SUM(CASE WHEN l.pool = 'bonus' AND l.kind = 'commit' THEN l.amount ELSE 0 END),
    SUM(CASE WHEN l.pool = 'period' THEN (CASE l.kind WHEN 'hold' THEN l.amount
                                                      ELSE -l.amount END) ELSE 0 END),
    SUM(CASE WHEN l.pool = 'period' AND l.kind = 'commit' THEN l.amount ELSE 0 END),
    (SELECT COALESCE(SUM(c.amount), 0) FROM ledger AS c
     WHERE c.kind = 'commit' AND c.pool = 'period' AND c.guild_id = l.guild_id
       AND c.user_id = l.user_id AND c.id < (
           SELECT COALESCE(MAX(r.id), 0) FROM ledger AS r
           WHERE r.kind = 'reset' AND r.guild_id = l.guild_id AND r.user_id = l.user_id))
FROM ledger AS l
WHERE l.user_id IS NOT NULL
GROUP BY l.guild_id, l.user_id;

CREATE TRIGGER ledger_keeps_member_totals AFTER INSERT ON ledger
WHEN NEW.user_id IS NOT NULL AND NEW.kind IN ('hold', 'commit', 'release', 'grant', 'reset')
BEGIN
    INSERT INTO member_totals (guild_id, user_id, unsettled, bonus_granted, bonus_unsettled,
                               bonus_committed, period_unsettled, period_committed,
                               period_excused)
    VALUES (
        NEW.guild_id,
        NEW.user_id,
        CASE NEW.kind WHEN 'hold' THEN NEW.amount WHEN 'commit' THEN -NEW.amount
                      WHEN 'release' THEN -NEW.amount ELSE 0 END,
        CASE WHEN NEW.kind = 'grant' THEN NEW.amount ELSE 0 END,
        CASE WHEN NEW.pool = 'bonus' THEN (CASE NEW.kind WHEN 'hold' THEN NEW.amount
                                                         ELSE -NEW.amount END) ELSE 0 END,
        CASE WHEN NEW.pool = 'bonus' AND NEW.kind = 'commit' THEN NEW.amount ELSE 0 END,
        CASE WHEN NEW.pool = 'period' THEN (CASE NEW.kind WHEN 'hold' THEN NEW.amount
                                                          ELSE -NEW.amount END) ELSE 0 END,
        CASE WHEN NEW.pool = 'period' AND NEW.kind = 'commit' THEN NEW.amount ELSE 0 END,
        0
    )
    ON CONFLICT (guild_id, user_id) DO UPDATE SET
        unsettled = member_totals.unsettled + excluded.unsettled,
        bonus_granted = member_totals.bonus_granted + excluded.bonus_granted,
        bonus_unsettled = member_totals.bonus_unsettled + excluded.bonus_unsettled,
        bonus_committed = member_totals.bonus_committed + excluded.bonus_committed,
        period_unsettled = member_totals.period_unsettled + excluded.period_unsettled,
        period_committed = member_totals.period_committed + excluded.period_committed,
        period_excused = CASE WHEN NEW.kind = 'reset' THEN member_totals.period_committed
                              ELSE member_totals.period_excused END;
END;
