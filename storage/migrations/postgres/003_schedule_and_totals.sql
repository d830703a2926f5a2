-- The same as ../sqlite/003_schedule_and_totals.sql: costs that do not grow with history,
-- and what the read schedule needs.

ALTER TABLE jobs ADD COLUMN bucket TEXT;

CREATE TABLE learned_durations (
    bucket     TEXT COLLATE "C" PRIMARY KEY,
    samples    TEXT NOT NULL DEFAULT '[]',
    updated_at TEXT COLLATE "C" NOT NULL
);

ALTER TABLE jobs ADD COLUMN give_up_at TEXT COLLATE "C";
CREATE INDEX jobs_give_up ON jobs (give_up_at)
    WHERE state IN ('SUBMITTING', 'QUEUED', 'PROCESSING');

ALTER TABLE jobs ADD COLUMN read_priority INTEGER NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN expected_at TEXT COLLATE "C";

ALTER TABLE jobs ADD COLUMN webhook_token TEXT;
CREATE UNIQUE INDEX jobs_by_webhook ON jobs (webhook_token) WHERE webhook_token IS NOT NULL;

CREATE INDEX jobs_by_guild_id ON jobs (guild_id, id);
CREATE INDEX jobs_active_by_member ON jobs (guild_id, user_id)
    WHERE state IN ('SUBMITTING', 'QUEUED', 'PROCESSING');

CREATE TABLE member_totals (
    guild_id         BIGINT NOT NULL,
    user_id          BIGINT NOT NULL,
    unsettled        BIGINT NOT NULL DEFAULT 0,
    bonus_granted    BIGINT NOT NULL DEFAULT 0,
    bonus_unsettled  BIGINT NOT NULL DEFAULT 0,
    bonus_committed  BIGINT NOT NULL DEFAULT 0,
    period_unsettled BIGINT NOT NULL DEFAULT 0,
    period_committed BIGINT NOT NULL DEFAULT 0,
    period_excused   BIGINT NOT NULL DEFAULT 0,
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

CREATE FUNCTION ledger_keeps_member_totals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.user_id IS NULL OR NEW.kind NOT IN ('hold', 'commit', 'release', 'grant', 'reset')
    THEN
        RETURN NULL;
    END IF;
    INSERT INTO member_totals AS t (guild_id, user_id, unsettled, bonus_granted,
                                    bonus_unsettled, bonus_committed, period_unsettled,
                                    period_committed, period_excused)
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
        unsettled = t.unsettled + EXCLUDED.unsettled,
        bonus_granted = t.bonus_granted + EXCLUDED.bonus_granted,
        bonus_unsettled = t.bonus_unsettled + EXCLUDED.bonus_unsettled,
        bonus_committed = t.bonus_committed + EXCLUDED.bonus_committed,
        period_unsettled = t.period_unsettled + EXCLUDED.period_unsettled,
        period_committed = t.period_committed + EXCLUDED.period_committed,
        period_excused = CASE WHEN NEW.kind = 'reset' THEN t.period_committed
                              ELSE t.period_excused END;
    RETURN NULL;
END;
$$;

CREATE TRIGGER ledger_keeps_member_totals AFTER INSERT ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_keeps_member_totals();
