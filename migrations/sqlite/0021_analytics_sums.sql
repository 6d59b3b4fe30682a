-- switchyard schema, version 21. Keep in step with ../postgres/0021_analytics_sums.sql.
-- What per-agent and per-queue analytics read, summed ahead by triggers (api/src/store/analytics.rs).
--
-- Repeat callers per agent. Counting them from
-- calls probes the caller index once per answered call: seconds for a month of millions of
-- calls, and the agents' leaderboards need every agent's count.
--
-- calls.repeated: 1 when another call of the same tenant and caller number (any queue, any
-- outcome) arrived after this one, within 24 h of its arrival. A call being written marks the
-- calls of its caller in the 24 h before it, and itself if a later one is already stored; a
-- call deleted (retention, or a record replaced) unmarks those that no other call repeats.
--
-- call_repeat_sums: per tenant, span (`span_ms`: 900000, a quarter hour, and 86400000, a UTC
-- day; every call counts in one of each), start of the span the call arrived in, and agent:
-- the answered calls with a caller number (`answered`) and how many of them are marked
-- (`repeated`). A range reads its whole days and the quarter hours at its ends. It is always
-- the calls table summed: deleted calls take their counts with them, as counting calls did.
ALTER TABLE calls ADD COLUMN repeated INTEGER NOT NULL DEFAULT 0;

UPDATE calls SET repeated = 1 WHERE caller_number <> '' AND EXISTS (
    SELECT 1 FROM calls r WHERE r.tenant_id = calls.tenant_id
    AND r.caller_number = calls.caller_number AND r.arrived_at > calls.arrived_at
    AND r.arrived_at <= calls.arrived_at + 86400000);

CREATE TABLE call_repeat_sums (
    tenant_id  TEXT   NOT NULL,
    span_ms    BIGINT NOT NULL,
    start_ms   BIGINT NOT NULL,
    agent_id   BIGINT NOT NULL,
    answered   BIGINT NOT NULL DEFAULT 0,
    repeated   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, span_ms, start_ms, agent_id)
);
INSERT INTO call_repeat_sums (tenant_id, span_ms, start_ms, agent_id, answered, repeated)
    SELECT tenant_id, span, (arrived_at / span) * span, agent_id, COUNT(*), SUM(repeated)
    FROM calls, (SELECT 900000 AS span UNION ALL SELECT 86400000) spans
    WHERE outcome = 'answered' AND agent_id IS NOT NULL AND caller_number <> ''
    GROUP BY 1, 2, 3, 4;

-- The call's own count, its own mark (a later call may be stored first: records are filed
-- out of order after an outage), then the marks it gives the calls before it. A mark changed
-- moves the count through call_repeat_update.
CREATE TRIGGER call_repeat_insert AFTER INSERT ON calls
BEGIN
    INSERT INTO call_repeat_sums (tenant_id, span_ms, start_ms, agent_id, answered, repeated)
        SELECT NEW.tenant_id, span, (NEW.arrived_at / span) * span, NEW.agent_id, 1, NEW.repeated
        FROM (SELECT 900000 AS span UNION ALL SELECT 86400000) spans WHERE NEW.outcome = 'answered' AND NEW.agent_id IS NOT NULL AND NEW.caller_number <> ''
        ON CONFLICT (tenant_id, span_ms, start_ms, agent_id) DO UPDATE SET
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
    INSERT INTO call_repeat_sums (tenant_id, span_ms, start_ms, agent_id, answered, repeated)
        SELECT OLD.tenant_id, span, (OLD.arrived_at / span) * span, OLD.agent_id, -1, -OLD.repeated
        FROM (SELECT 900000 AS span UNION ALL SELECT 86400000) spans WHERE OLD.outcome = 'answered' AND OLD.agent_id IS NOT NULL AND OLD.caller_number <> ''
        ON CONFLICT (tenant_id, span_ms, start_ms, agent_id) DO UPDATE SET
            answered = call_repeat_sums.answered + excluded.answered,
            repeated = call_repeat_sums.repeated + excluded.repeated;
    INSERT INTO call_repeat_sums (tenant_id, span_ms, start_ms, agent_id, answered, repeated)
        SELECT NEW.tenant_id, span, (NEW.arrived_at / span) * span, NEW.agent_id, 1, NEW.repeated
        FROM (SELECT 900000 AS span UNION ALL SELECT 86400000) spans WHERE NEW.outcome = 'answered' AND NEW.agent_id IS NOT NULL AND NEW.caller_number <> ''
        ON CONFLICT (tenant_id, span_ms, start_ms, agent_id) DO UPDATE SET
            answered = call_repeat_sums.answered + excluded.answered,
            repeated = call_repeat_sums.repeated + excluded.repeated;
END;

CREATE TRIGGER call_repeat_delete AFTER DELETE ON calls
BEGIN
    INSERT INTO call_repeat_sums (tenant_id, span_ms, start_ms, agent_id, answered, repeated)
        SELECT OLD.tenant_id, span, (OLD.arrived_at / span) * span, OLD.agent_id, -1, -OLD.repeated
        FROM (SELECT 900000 AS span UNION ALL SELECT 86400000) spans WHERE OLD.outcome = 'answered' AND OLD.agent_id IS NOT NULL AND OLD.caller_number <> ''
        ON CONFLICT (tenant_id, span_ms, start_ms, agent_id) DO UPDATE SET
            answered = call_repeat_sums.answered + excluded.answered,
            repeated = call_repeat_sums.repeated + excluded.repeated;
    UPDATE calls SET repeated = 0 WHERE tenant_id = OLD.tenant_id
        AND caller_number = OLD.caller_number AND OLD.caller_number <> ''
        AND arrived_at >= OLD.arrived_at - 86400000 AND arrived_at < OLD.arrived_at
        AND repeated = 1 AND NOT EXISTS (SELECT 1 FROM calls r
        WHERE r.tenant_id = calls.tenant_id AND r.caller_number = calls.caller_number
        AND r.arrived_at > calls.arrived_at AND r.arrived_at <= calls.arrived_at + 86400000);
END;

-- interval_scope_day_sums: each queue's and agent's interval rows summed per UTC day, kept by
-- triggers like interval_tenant_sums. Per-queue and per-agent figures over a range read the
-- whole days here and the quarter hours at the range's ends from interval_stats: a month of
-- 100 agents was 297,600 rows of interval_stats (each with its figures JSON), now 3,100.
CREATE TABLE interval_scope_day_sums (
    tenant_id   TEXT    NOT NULL,
    scope_kind  TEXT    NOT NULL,
    scope_id    BIGINT  NOT NULL,
    day_ms      BIGINT  NOT NULL,
    n_offered BIGINT NOT NULL DEFAULT 0,
    n_answered BIGINT NOT NULL DEFAULT 0,
    n_within BIGINT NOT NULL DEFAULT 0,
    n_abandoned BIGINT NOT NULL DEFAULT 0,
    n_short_abandoned BIGINT NOT NULL DEFAULT 0,
    n_exited BIGINT NOT NULL DEFAULT 0,
    n_callback BIGINT NOT NULL DEFAULT 0,
    n_voicemail BIGINT NOT NULL DEFAULT 0,
    n_handled BIGINT NOT NULL DEFAULT 0,
    n_accepted BIGINT NOT NULL DEFAULT 0,
    n_rejected BIGINT NOT NULL DEFAULT 0,
    n_no_answer BIGINT NOT NULL DEFAULT 0,
    n_busy BIGINT NOT NULL DEFAULT 0,
    n_failed BIGINT NOT NULL DEFAULT 0,
    s_answer_wait REAL NOT NULL DEFAULT 0,
    s_abandon_wait REAL NOT NULL DEFAULT 0,
    s_talk REAL NOT NULL DEFAULT 0,
    s_wrapup REAL NOT NULL DEFAULT 0,
    s_handle REAL NOT NULL DEFAULT 0,
    s_available REAL NOT NULL DEFAULT 0,
    s_on_call REAL NOT NULL DEFAULT 0,
    s_wrap_up REAL NOT NULL DEFAULT 0,
    s_reserved REAL NOT NULL DEFAULT 0,
    s_on_break REAL NOT NULL DEFAULT 0,
    s_logged_out REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, scope_kind, scope_id, day_ms)
);
INSERT INTO interval_scope_day_sums (tenant_id, scope_kind, scope_id, day_ms, n_offered, n_answered, n_within, n_abandoned, n_short_abandoned, n_exited, n_callback, n_voicemail, n_handled, n_accepted, n_rejected, n_no_answer, n_busy, n_failed, s_answer_wait, s_abandon_wait, s_talk, s_wrapup, s_handle, s_available, s_on_call, s_wrap_up, s_reserved, s_on_break, s_logged_out)
    SELECT tenant_id, scope_kind, scope_id, (start_ms / 86400000) * 86400000, SUM(n_offered), SUM(n_answered), SUM(n_within), SUM(n_abandoned), SUM(n_short_abandoned), SUM(n_exited), SUM(n_callback), SUM(n_voicemail), SUM(n_handled), SUM(n_accepted), SUM(n_rejected), SUM(n_no_answer), SUM(n_busy), SUM(n_failed), SUM(s_answer_wait), SUM(s_abandon_wait), SUM(s_talk), SUM(s_wrapup), SUM(s_handle), SUM(s_available), SUM(s_on_call), SUM(s_wrap_up), SUM(s_reserved), SUM(s_on_break), SUM(s_logged_out)
    FROM interval_stats WHERE scope_kind IN ('queue', 'agent') GROUP BY 1, 2, 3, 4;
CREATE TRIGGER interval_scope_day_sums_insert AFTER INSERT ON interval_stats
WHEN NEW.scope_kind IN ('queue', 'agent')
BEGIN
    INSERT INTO interval_scope_day_sums (tenant_id, scope_kind, scope_id, day_ms, n_offered, n_answered, n_within, n_abandoned, n_short_abandoned, n_exited, n_callback, n_voicemail, n_handled, n_accepted, n_rejected, n_no_answer, n_busy, n_failed, s_answer_wait, s_abandon_wait, s_talk, s_wrapup, s_handle, s_available, s_on_call, s_wrap_up, s_reserved, s_on_break, s_logged_out)
    VALUES (NEW.tenant_id, NEW.scope_kind, NEW.scope_id, (NEW.start_ms / 86400000) * 86400000, NEW.n_offered, NEW.n_answered, NEW.n_within, NEW.n_abandoned, NEW.n_short_abandoned, NEW.n_exited, NEW.n_callback, NEW.n_voicemail, NEW.n_handled, NEW.n_accepted, NEW.n_rejected, NEW.n_no_answer, NEW.n_busy, NEW.n_failed, NEW.s_answer_wait, NEW.s_abandon_wait, NEW.s_talk, NEW.s_wrapup, NEW.s_handle, NEW.s_available, NEW.s_on_call, NEW.s_wrap_up, NEW.s_reserved, NEW.s_on_break, NEW.s_logged_out)
    ON CONFLICT (tenant_id, scope_kind, scope_id, day_ms) DO UPDATE SET
        n_offered = interval_scope_day_sums.n_offered + excluded.n_offered,
        n_answered = interval_scope_day_sums.n_answered + excluded.n_answered,
        n_within = interval_scope_day_sums.n_within + excluded.n_within,
        n_abandoned = interval_scope_day_sums.n_abandoned + excluded.n_abandoned,
        n_short_abandoned = interval_scope_day_sums.n_short_abandoned + excluded.n_short_abandoned,
        n_exited = interval_scope_day_sums.n_exited + excluded.n_exited,
        n_callback = interval_scope_day_sums.n_callback + excluded.n_callback,
        n_voicemail = interval_scope_day_sums.n_voicemail + excluded.n_voicemail,
        n_handled = interval_scope_day_sums.n_handled + excluded.n_handled,
        n_accepted = interval_scope_day_sums.n_accepted + excluded.n_accepted,
        n_rejected = interval_scope_day_sums.n_rejected + excluded.n_rejected,
        n_no_answer = interval_scope_day_sums.n_no_answer + excluded.n_no_answer,
        n_busy = interval_scope_day_sums.n_busy + excluded.n_busy,
        n_failed = interval_scope_day_sums.n_failed + excluded.n_failed,
        s_answer_wait = interval_scope_day_sums.s_answer_wait + excluded.s_answer_wait,
        s_abandon_wait = interval_scope_day_sums.s_abandon_wait + excluded.s_abandon_wait,
        s_talk = interval_scope_day_sums.s_talk + excluded.s_talk,
        s_wrapup = interval_scope_day_sums.s_wrapup + excluded.s_wrapup,
        s_handle = interval_scope_day_sums.s_handle + excluded.s_handle,
        s_available = interval_scope_day_sums.s_available + excluded.s_available,
        s_on_call = interval_scope_day_sums.s_on_call + excluded.s_on_call,
        s_wrap_up = interval_scope_day_sums.s_wrap_up + excluded.s_wrap_up,
        s_reserved = interval_scope_day_sums.s_reserved + excluded.s_reserved,
        s_on_break = interval_scope_day_sums.s_on_break + excluded.s_on_break,
        s_logged_out = interval_scope_day_sums.s_logged_out + excluded.s_logged_out;
END;
CREATE TRIGGER interval_scope_day_sums_update AFTER UPDATE ON interval_stats
WHEN OLD.scope_kind IN ('queue', 'agent') OR NEW.scope_kind IN ('queue', 'agent')
BEGIN
    INSERT INTO interval_scope_day_sums (tenant_id, scope_kind, scope_id, day_ms, n_offered, n_answered, n_within, n_abandoned, n_short_abandoned, n_exited, n_callback, n_voicemail, n_handled, n_accepted, n_rejected, n_no_answer, n_busy, n_failed, s_answer_wait, s_abandon_wait, s_talk, s_wrapup, s_handle, s_available, s_on_call, s_wrap_up, s_reserved, s_on_break, s_logged_out)
    SELECT OLD.tenant_id, OLD.scope_kind, OLD.scope_id, (OLD.start_ms / 86400000) * 86400000, -OLD.n_offered, -OLD.n_answered, -OLD.n_within, -OLD.n_abandoned, -OLD.n_short_abandoned, -OLD.n_exited, -OLD.n_callback, -OLD.n_voicemail, -OLD.n_handled, -OLD.n_accepted, -OLD.n_rejected, -OLD.n_no_answer, -OLD.n_busy, -OLD.n_failed, -OLD.s_answer_wait, -OLD.s_abandon_wait, -OLD.s_talk, -OLD.s_wrapup, -OLD.s_handle, -OLD.s_available, -OLD.s_on_call, -OLD.s_wrap_up, -OLD.s_reserved, -OLD.s_on_break, -OLD.s_logged_out WHERE OLD.scope_kind IN ('queue', 'agent')
    ON CONFLICT (tenant_id, scope_kind, scope_id, day_ms) DO UPDATE SET
        n_offered = interval_scope_day_sums.n_offered + excluded.n_offered,
        n_answered = interval_scope_day_sums.n_answered + excluded.n_answered,
        n_within = interval_scope_day_sums.n_within + excluded.n_within,
        n_abandoned = interval_scope_day_sums.n_abandoned + excluded.n_abandoned,
        n_short_abandoned = interval_scope_day_sums.n_short_abandoned + excluded.n_short_abandoned,
        n_exited = interval_scope_day_sums.n_exited + excluded.n_exited,
        n_callback = interval_scope_day_sums.n_callback + excluded.n_callback,
        n_voicemail = interval_scope_day_sums.n_voicemail + excluded.n_voicemail,
        n_handled = interval_scope_day_sums.n_handled + excluded.n_handled,
        n_accepted = interval_scope_day_sums.n_accepted + excluded.n_accepted,
        n_rejected = interval_scope_day_sums.n_rejected + excluded.n_rejected,
        n_no_answer = interval_scope_day_sums.n_no_answer + excluded.n_no_answer,
        n_busy = interval_scope_day_sums.n_busy + excluded.n_busy,
        n_failed = interval_scope_day_sums.n_failed + excluded.n_failed,
        s_answer_wait = interval_scope_day_sums.s_answer_wait + excluded.s_answer_wait,
        s_abandon_wait = interval_scope_day_sums.s_abandon_wait + excluded.s_abandon_wait,
        s_talk = interval_scope_day_sums.s_talk + excluded.s_talk,
        s_wrapup = interval_scope_day_sums.s_wrapup + excluded.s_wrapup,
        s_handle = interval_scope_day_sums.s_handle + excluded.s_handle,
        s_available = interval_scope_day_sums.s_available + excluded.s_available,
        s_on_call = interval_scope_day_sums.s_on_call + excluded.s_on_call,
        s_wrap_up = interval_scope_day_sums.s_wrap_up + excluded.s_wrap_up,
        s_reserved = interval_scope_day_sums.s_reserved + excluded.s_reserved,
        s_on_break = interval_scope_day_sums.s_on_break + excluded.s_on_break,
        s_logged_out = interval_scope_day_sums.s_logged_out + excluded.s_logged_out;
    INSERT INTO interval_scope_day_sums (tenant_id, scope_kind, scope_id, day_ms, n_offered, n_answered, n_within, n_abandoned, n_short_abandoned, n_exited, n_callback, n_voicemail, n_handled, n_accepted, n_rejected, n_no_answer, n_busy, n_failed, s_answer_wait, s_abandon_wait, s_talk, s_wrapup, s_handle, s_available, s_on_call, s_wrap_up, s_reserved, s_on_break, s_logged_out)
    SELECT NEW.tenant_id, NEW.scope_kind, NEW.scope_id, (NEW.start_ms / 86400000) * 86400000, NEW.n_offered, NEW.n_answered, NEW.n_within, NEW.n_abandoned, NEW.n_short_abandoned, NEW.n_exited, NEW.n_callback, NEW.n_voicemail, NEW.n_handled, NEW.n_accepted, NEW.n_rejected, NEW.n_no_answer, NEW.n_busy, NEW.n_failed, NEW.s_answer_wait, NEW.s_abandon_wait, NEW.s_talk, NEW.s_wrapup, NEW.s_handle, NEW.s_available, NEW.s_on_call, NEW.s_wrap_up, NEW.s_reserved, NEW.s_on_break, NEW.s_logged_out WHERE NEW.scope_kind IN ('queue', 'agent')
    ON CONFLICT (tenant_id, scope_kind, scope_id, day_ms) DO UPDATE SET
        n_offered = interval_scope_day_sums.n_offered + excluded.n_offered,
        n_answered = interval_scope_day_sums.n_answered + excluded.n_answered,
        n_within = interval_scope_day_sums.n_within + excluded.n_within,
        n_abandoned = interval_scope_day_sums.n_abandoned + excluded.n_abandoned,
        n_short_abandoned = interval_scope_day_sums.n_short_abandoned + excluded.n_short_abandoned,
        n_exited = interval_scope_day_sums.n_exited + excluded.n_exited,
        n_callback = interval_scope_day_sums.n_callback + excluded.n_callback,
        n_voicemail = interval_scope_day_sums.n_voicemail + excluded.n_voicemail,
        n_handled = interval_scope_day_sums.n_handled + excluded.n_handled,
        n_accepted = interval_scope_day_sums.n_accepted + excluded.n_accepted,
        n_rejected = interval_scope_day_sums.n_rejected + excluded.n_rejected,
        n_no_answer = interval_scope_day_sums.n_no_answer + excluded.n_no_answer,
        n_busy = interval_scope_day_sums.n_busy + excluded.n_busy,
        n_failed = interval_scope_day_sums.n_failed + excluded.n_failed,
        s_answer_wait = interval_scope_day_sums.s_answer_wait + excluded.s_answer_wait,
        s_abandon_wait = interval_scope_day_sums.s_abandon_wait + excluded.s_abandon_wait,
        s_talk = interval_scope_day_sums.s_talk + excluded.s_talk,
        s_wrapup = interval_scope_day_sums.s_wrapup + excluded.s_wrapup,
        s_handle = interval_scope_day_sums.s_handle + excluded.s_handle,
        s_available = interval_scope_day_sums.s_available + excluded.s_available,
        s_on_call = interval_scope_day_sums.s_on_call + excluded.s_on_call,
        s_wrap_up = interval_scope_day_sums.s_wrap_up + excluded.s_wrap_up,
        s_reserved = interval_scope_day_sums.s_reserved + excluded.s_reserved,
        s_on_break = interval_scope_day_sums.s_on_break + excluded.s_on_break,
        s_logged_out = interval_scope_day_sums.s_logged_out + excluded.s_logged_out;
END;
CREATE TRIGGER interval_scope_day_sums_delete AFTER DELETE ON interval_stats
WHEN OLD.scope_kind IN ('queue', 'agent')
BEGIN
    INSERT INTO interval_scope_day_sums (tenant_id, scope_kind, scope_id, day_ms, n_offered, n_answered, n_within, n_abandoned, n_short_abandoned, n_exited, n_callback, n_voicemail, n_handled, n_accepted, n_rejected, n_no_answer, n_busy, n_failed, s_answer_wait, s_abandon_wait, s_talk, s_wrapup, s_handle, s_available, s_on_call, s_wrap_up, s_reserved, s_on_break, s_logged_out)
    VALUES (OLD.tenant_id, OLD.scope_kind, OLD.scope_id, (OLD.start_ms / 86400000) * 86400000, -OLD.n_offered, -OLD.n_answered, -OLD.n_within, -OLD.n_abandoned, -OLD.n_short_abandoned, -OLD.n_exited, -OLD.n_callback, -OLD.n_voicemail, -OLD.n_handled, -OLD.n_accepted, -OLD.n_rejected, -OLD.n_no_answer, -OLD.n_busy, -OLD.n_failed, -OLD.s_answer_wait, -OLD.s_abandon_wait, -OLD.s_talk, -OLD.s_wrapup, -OLD.s_handle, -OLD.s_available, -OLD.s_on_call, -OLD.s_wrap_up, -OLD.s_reserved, -OLD.s_on_break, -OLD.s_logged_out)
    ON CONFLICT (tenant_id, scope_kind, scope_id, day_ms) DO UPDATE SET
        n_offered = interval_scope_day_sums.n_offered + excluded.n_offered,
        n_answered = interval_scope_day_sums.n_answered + excluded.n_answered,
        n_within = interval_scope_day_sums.n_within + excluded.n_within,
        n_abandoned = interval_scope_day_sums.n_abandoned + excluded.n_abandoned,
        n_short_abandoned = interval_scope_day_sums.n_short_abandoned + excluded.n_short_abandoned,
        n_exited = interval_scope_day_sums.n_exited + excluded.n_exited,
        n_callback = interval_scope_day_sums.n_callback + excluded.n_callback,
        n_voicemail = interval_scope_day_sums.n_voicemail + excluded.n_voicemail,
        n_handled = interval_scope_day_sums.n_handled + excluded.n_handled,
        n_accepted = interval_scope_day_sums.n_accepted + excluded.n_accepted,
        n_rejected = interval_scope_day_sums.n_rejected + excluded.n_rejected,
        n_no_answer = interval_scope_day_sums.n_no_answer + excluded.n_no_answer,
        n_busy = interval_scope_day_sums.n_busy + excluded.n_busy,
        n_failed = interval_scope_day_sums.n_failed + excluded.n_failed,
        s_answer_wait = interval_scope_day_sums.s_answer_wait + excluded.s_answer_wait,
        s_abandon_wait = interval_scope_day_sums.s_abandon_wait + excluded.s_abandon_wait,
        s_talk = interval_scope_day_sums.s_talk + excluded.s_talk,
        s_wrapup = interval_scope_day_sums.s_wrapup + excluded.s_wrapup,
        s_handle = interval_scope_day_sums.s_handle + excluded.s_handle,
        s_available = interval_scope_day_sums.s_available + excluded.s_available,
        s_on_call = interval_scope_day_sums.s_on_call + excluded.s_on_call,
        s_wrap_up = interval_scope_day_sums.s_wrap_up + excluded.s_wrap_up,
        s_reserved = interval_scope_day_sums.s_reserved + excluded.s_reserved,
        s_on_break = interval_scope_day_sums.s_on_break + excluded.s_on_break,
        s_logged_out = interval_scope_day_sums.s_logged_out + excluded.s_logged_out;
END;
