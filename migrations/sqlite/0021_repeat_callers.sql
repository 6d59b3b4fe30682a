-- switchyard schema, version 21. Keep in step with ../postgres/0021_repeat_callers.sql.
-- Repeat callers per agent, kept by triggers (api/src/store/analytics.rs). Counting them from
-- calls probes the caller index once per answered call: seconds for a month of millions of
-- calls, and the agents' leaderboards need every agent's count.
--
-- calls.repeated: 1 when another call of the same tenant and caller number (any queue, any
-- outcome) arrived after this one, within 24 h of its arrival. A call being written marks the
-- calls of its caller in the 24 h before it, and itself if a later one is already stored; a
-- call deleted (retention, or a record replaced) unmarks those that no other call repeats.
--
-- call_repeat_sums: per tenant, 15-minute start of arrival and agent, the answered calls with
-- a caller number (`answered`) and how many of them are marked (`repeated`). It is always the
-- calls table summed: deleted calls take their counts with them, as counting calls did.
ALTER TABLE calls ADD COLUMN repeated INTEGER NOT NULL DEFAULT 0;

UPDATE calls SET repeated = 1 WHERE caller_number <> '' AND EXISTS (
    SELECT 1 FROM calls r WHERE r.tenant_id = calls.tenant_id
    AND r.caller_number = calls.caller_number AND r.arrived_at > calls.arrived_at
    AND r.arrived_at <= calls.arrived_at + 86400000);

CREATE TABLE call_repeat_sums (
    tenant_id  TEXT   NOT NULL,
    start_ms   BIGINT NOT NULL,
    agent_id   BIGINT NOT NULL,
    answered   BIGINT NOT NULL DEFAULT 0,
    repeated   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, start_ms, agent_id)
);
INSERT INTO call_repeat_sums (tenant_id, start_ms, agent_id, answered, repeated)
    SELECT tenant_id, (arrived_at / 900000) * 900000, agent_id, COUNT(*), SUM(repeated)
    FROM calls WHERE outcome = 'answered' AND agent_id IS NOT NULL AND caller_number <> ''
    GROUP BY 1, 2, 3;

-- The call's own count, its own mark (a later call may be stored first: records are filed
-- out of order after an outage), then the marks it gives the calls before it. A mark changed
-- moves the count through call_repeat_update.
CREATE TRIGGER call_repeat_insert AFTER INSERT ON calls
BEGIN
    INSERT INTO call_repeat_sums (tenant_id, start_ms, agent_id, answered, repeated)
        SELECT NEW.tenant_id, (NEW.arrived_at / 900000) * 900000, NEW.agent_id, 1, NEW.repeated
        WHERE NEW.outcome = 'answered' AND NEW.agent_id IS NOT NULL AND NEW.caller_number <> ''
        ON CONFLICT (tenant_id, start_ms, agent_id) DO UPDATE SET
            answered = call_repeat_sums.answered + excluded.answered,
            repeated = call_repeat_sums.repeated + excluded.repeated;
    UPDATE calls SET repeated = 1 WHERE id = NEW.id AND repeated = 0 AND caller_number <> ''
        AND EXISTS (SELECT 1 FROM calls r WHERE r.tenant_id = NEW.tenant_id
        AND r.caller_number = NEW.caller_number AND r.arrived_at > NEW.arrived_at
        AND r.arrived_at <= NEW.arrived_at + 86400000);
    UPDATE calls SET repeated = 1 WHERE tenant_id = NEW.tenant_id
        AND caller_number = NEW.caller_number AND NEW.caller_number <> ''
        AND arrived_at >= NEW.arrived_at - 86400000 AND arrived_at < NEW.arrived_at
        AND repeated = 0;
END;

CREATE TRIGGER call_repeat_update AFTER UPDATE ON calls
WHEN OLD.repeated IS NOT NEW.repeated OR OLD.outcome IS NOT NEW.outcome
    OR OLD.agent_id IS NOT NEW.agent_id OR OLD.arrived_at IS NOT NEW.arrived_at
    OR OLD.caller_number IS NOT NEW.caller_number OR OLD.tenant_id IS NOT NEW.tenant_id
BEGIN
    INSERT INTO call_repeat_sums (tenant_id, start_ms, agent_id, answered, repeated)
        SELECT OLD.tenant_id, (OLD.arrived_at / 900000) * 900000, OLD.agent_id, -1, -OLD.repeated
        WHERE OLD.outcome = 'answered' AND OLD.agent_id IS NOT NULL AND OLD.caller_number <> ''
        ON CONFLICT (tenant_id, start_ms, agent_id) DO UPDATE SET
            answered = call_repeat_sums.answered + excluded.answered,
            repeated = call_repeat_sums.repeated + excluded.repeated;
    INSERT INTO call_repeat_sums (tenant_id, start_ms, agent_id, answered, repeated)
        SELECT NEW.tenant_id, (NEW.arrived_at / 900000) * 900000, NEW.agent_id, 1, NEW.repeated
        WHERE NEW.outcome = 'answered' AND NEW.agent_id IS NOT NULL AND NEW.caller_number <> ''
        ON CONFLICT (tenant_id, start_ms, agent_id) DO UPDATE SET
            answered = call_repeat_sums.answered + excluded.answered,
            repeated = call_repeat_sums.repeated + excluded.repeated;
END;

CREATE TRIGGER call_repeat_delete AFTER DELETE ON calls
BEGIN
    INSERT INTO call_repeat_sums (tenant_id, start_ms, agent_id, answered, repeated)
        SELECT OLD.tenant_id, (OLD.arrived_at / 900000) * 900000, OLD.agent_id, -1, -OLD.repeated
        WHERE OLD.outcome = 'answered' AND OLD.agent_id IS NOT NULL AND OLD.caller_number <> ''
        ON CONFLICT (tenant_id, start_ms, agent_id) DO UPDATE SET
            answered = call_repeat_sums.answered + excluded.answered,
            repeated = call_repeat_sums.repeated + excluded.repeated;
    UPDATE calls SET repeated = 0 WHERE tenant_id = OLD.tenant_id
        AND caller_number = OLD.caller_number AND OLD.caller_number <> ''
        AND arrived_at >= OLD.arrived_at - 86400000 AND arrived_at < OLD.arrived_at
        AND repeated = 1 AND NOT EXISTS (SELECT 1 FROM calls r
        WHERE r.tenant_id = calls.tenant_id AND r.caller_number = calls.caller_number
        AND r.arrived_at > calls.arrived_at AND r.arrived_at <= calls.arrived_at + 86400000);
END;
