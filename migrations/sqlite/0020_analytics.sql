-- switchyard schema, version 20. Keep in step with ../postgres/0020_analytics.sql.
-- A tenant's time zone, and what analytics read fast (api/src/analytics, store/analytics.rs).
--
-- tenants.time_zone: the IANA name analytics cut days, weeks and months in (checked by the
-- API with jiff; 'UTC' until set).
--
-- interval_stats is the rollup analytics sum: its figures column is the engine's JSON (means
-- and ratios included), which is slow to parse by the thousand. The counters analytics add up
-- are stored beside it as generated columns, computed once when a row is written (queue
-- rows' `offers.*` and `agent_time_s.*` and agent rows' top-level offers and `state_time_s.*`
-- share columns; `scope_kind` says which a row is). Sums the figures keep only as means are
-- rebuilt: s_answer_wait = asa_s x answered, s_abandon_wait = avg_abandon_wait_s x abandoned.
--
-- SQLite cannot add a STORED generated column to a table: the table is rebuilt with them.
ALTER TABLE tenants ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';

CREATE TABLE interval_stats_v20 (
    tenant_id   TEXT    NOT NULL DEFAULT '',
    scope_kind  TEXT    NOT NULL CHECK (scope_kind IN ('queue', 'agent', 'total')),
    scope_id    BIGINT  NOT NULL DEFAULT 0,
    start_ms    BIGINT  NOT NULL,
    end_ms      BIGINT  NOT NULL,
    figures     TEXT    NOT NULL,
    n_offered INTEGER GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.offered'), 0)) STORED,
    n_answered INTEGER GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.answered'), 0)) STORED,
    n_within INTEGER GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.answered_within_sl'), 0)) STORED,
    n_abandoned INTEGER GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.abandoned'), 0)) STORED,
    n_short_abandoned INTEGER GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.short_abandoned'), 0)) STORED,
    n_exited INTEGER GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.exited_total'), 0)) STORED,
    n_callback INTEGER GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.exited.callback'), 0)) STORED,
    n_voicemail INTEGER GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.exited.voicemail'), 0)) STORED,
    n_handled INTEGER GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.handled'), 0)) STORED,
    n_accepted INTEGER GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.offers.accepted'), json_extract(figures, '$.accepted'), 0)) STORED,
    n_rejected INTEGER GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.offers.rejected'), json_extract(figures, '$.rejected'), 0)) STORED,
    n_no_answer INTEGER GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.offers.no_answer'), json_extract(figures, '$.no_answer'), 0)) STORED,
    n_busy INTEGER GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.offers.busy'), json_extract(figures, '$.busy'), 0)) STORED,
    n_failed INTEGER GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.offers.failed'), json_extract(figures, '$.failed'), 0)) STORED,
    s_answer_wait REAL GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.asa_s'), 0) * COALESCE(json_extract(figures, '$.answered'), 0)) STORED,
    s_abandon_wait REAL GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.avg_abandon_wait_s'), 0) * COALESCE(json_extract(figures, '$.abandoned'), 0)) STORED,
    s_talk REAL GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.talk_s'), 0)) STORED,
    s_wrapup REAL GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.wrapup_s'), 0)) STORED,
    s_handle REAL GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.handle_s'), 0)) STORED,
    s_available REAL GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.agent_time_s.available'), json_extract(figures, '$.state_time_s.available'), 0)) STORED,
    s_on_call REAL GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.agent_time_s.on_call'), json_extract(figures, '$.state_time_s.on_call'), 0)) STORED,
    s_wrap_up REAL GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.agent_time_s.wrap_up'), json_extract(figures, '$.state_time_s.wrap_up'), 0)) STORED,
    s_reserved REAL GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.agent_time_s.reserved'), json_extract(figures, '$.state_time_s.reserved'), 0)) STORED,
    s_on_break REAL GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.agent_time_s.on_break'), json_extract(figures, '$.state_time_s.on_break'), 0)) STORED,
    s_logged_out REAL GENERATED ALWAYS AS (COALESCE(json_extract(figures, '$.agent_time_s.logged_out'), json_extract(figures, '$.state_time_s.logged_out'), 0)) STORED
,
    PRIMARY KEY (tenant_id, scope_kind, scope_id, start_ms)
);
INSERT INTO interval_stats_v20 (tenant_id, scope_kind, scope_id, start_ms, end_ms, figures)
    SELECT tenant_id, scope_kind, scope_id, start_ms, end_ms, figures FROM interval_stats;
DROP TABLE interval_stats;
ALTER TABLE interval_stats_v20 RENAME TO interval_stats;

-- A tenant's rows of one kind over a range, whatever their queue or agent (the primary key
-- puts scope_id before start_ms).
CREATE INDEX interval_stats_range ON interval_stats (tenant_id, scope_kind, start_ms);
-- Repeat callers: the same caller number again within 24 h of a call.
CREATE INDEX calls_tenant_caller_arrived ON calls (tenant_id, caller_number, arrived_at);
-- A tenant's dials and dispositions over a range (the existing indexes are per campaign).
CREATE INDEX campaign_attempts_tenant_dialed ON campaign_attempts (tenant_id, dialed_at);
CREATE INDEX dispositions_tenant_at ON dispositions (tenant_id, at);

-- The rollup of the rollup: a tenant's queue rows and agent rows summed per 15-minute start,
-- kept by triggers as interval rows are written, re-written or deleted (a re-written row
-- takes its old counters out and puts its new ones in). An overview of a month reads at most
-- 2,976 rows per kind from it, however many queues and agents the tenant has. Platform-wide
-- total rows are left out (analytics never read them).
CREATE TABLE interval_tenant_sums (
    tenant_id   TEXT    NOT NULL,
    scope_kind  TEXT    NOT NULL,
    start_ms    BIGINT  NOT NULL,
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
    PRIMARY KEY (tenant_id, scope_kind, start_ms)
);
INSERT INTO interval_tenant_sums (tenant_id, scope_kind, start_ms, n_offered, n_answered, n_within, n_abandoned, n_short_abandoned, n_exited, n_callback, n_voicemail, n_handled, n_accepted, n_rejected, n_no_answer, n_busy, n_failed, s_answer_wait, s_abandon_wait, s_talk, s_wrapup, s_handle, s_available, s_on_call, s_wrap_up, s_reserved, s_on_break, s_logged_out)
    SELECT tenant_id, scope_kind, start_ms, SUM(n_offered), SUM(n_answered), SUM(n_within), SUM(n_abandoned), SUM(n_short_abandoned), SUM(n_exited), SUM(n_callback), SUM(n_voicemail), SUM(n_handled), SUM(n_accepted), SUM(n_rejected), SUM(n_no_answer), SUM(n_busy), SUM(n_failed), SUM(s_answer_wait), SUM(s_abandon_wait), SUM(s_talk), SUM(s_wrapup), SUM(s_handle), SUM(s_available), SUM(s_on_call), SUM(s_wrap_up), SUM(s_reserved), SUM(s_on_break), SUM(s_logged_out)
    FROM interval_stats WHERE scope_kind IN ('queue', 'agent') GROUP BY tenant_id, scope_kind, start_ms;
CREATE TRIGGER interval_tenant_sums_insert AFTER INSERT ON interval_stats
WHEN NEW.scope_kind IN ('queue', 'agent')
BEGIN
    INSERT INTO interval_tenant_sums (tenant_id, scope_kind, start_ms, n_offered, n_answered, n_within, n_abandoned, n_short_abandoned, n_exited, n_callback, n_voicemail, n_handled, n_accepted, n_rejected, n_no_answer, n_busy, n_failed, s_answer_wait, s_abandon_wait, s_talk, s_wrapup, s_handle, s_available, s_on_call, s_wrap_up, s_reserved, s_on_break, s_logged_out)
    VALUES (NEW.tenant_id, NEW.scope_kind, NEW.start_ms, NEW.n_offered, NEW.n_answered, NEW.n_within, NEW.n_abandoned, NEW.n_short_abandoned, NEW.n_exited, NEW.n_callback, NEW.n_voicemail, NEW.n_handled, NEW.n_accepted, NEW.n_rejected, NEW.n_no_answer, NEW.n_busy, NEW.n_failed, NEW.s_answer_wait, NEW.s_abandon_wait, NEW.s_talk, NEW.s_wrapup, NEW.s_handle, NEW.s_available, NEW.s_on_call, NEW.s_wrap_up, NEW.s_reserved, NEW.s_on_break, NEW.s_logged_out)
    ON CONFLICT (tenant_id, scope_kind, start_ms) DO UPDATE SET
        n_offered = interval_tenant_sums.n_offered + excluded.n_offered,
        n_answered = interval_tenant_sums.n_answered + excluded.n_answered,
        n_within = interval_tenant_sums.n_within + excluded.n_within,
        n_abandoned = interval_tenant_sums.n_abandoned + excluded.n_abandoned,
        n_short_abandoned = interval_tenant_sums.n_short_abandoned + excluded.n_short_abandoned,
        n_exited = interval_tenant_sums.n_exited + excluded.n_exited,
        n_callback = interval_tenant_sums.n_callback + excluded.n_callback,
        n_voicemail = interval_tenant_sums.n_voicemail + excluded.n_voicemail,
        n_handled = interval_tenant_sums.n_handled + excluded.n_handled,
        n_accepted = interval_tenant_sums.n_accepted + excluded.n_accepted,
        n_rejected = interval_tenant_sums.n_rejected + excluded.n_rejected,
        n_no_answer = interval_tenant_sums.n_no_answer + excluded.n_no_answer,
        n_busy = interval_tenant_sums.n_busy + excluded.n_busy,
        n_failed = interval_tenant_sums.n_failed + excluded.n_failed,
        s_answer_wait = interval_tenant_sums.s_answer_wait + excluded.s_answer_wait,
        s_abandon_wait = interval_tenant_sums.s_abandon_wait + excluded.s_abandon_wait,
        s_talk = interval_tenant_sums.s_talk + excluded.s_talk,
        s_wrapup = interval_tenant_sums.s_wrapup + excluded.s_wrapup,
        s_handle = interval_tenant_sums.s_handle + excluded.s_handle,
        s_available = interval_tenant_sums.s_available + excluded.s_available,
        s_on_call = interval_tenant_sums.s_on_call + excluded.s_on_call,
        s_wrap_up = interval_tenant_sums.s_wrap_up + excluded.s_wrap_up,
        s_reserved = interval_tenant_sums.s_reserved + excluded.s_reserved,
        s_on_break = interval_tenant_sums.s_on_break + excluded.s_on_break,
        s_logged_out = interval_tenant_sums.s_logged_out + excluded.s_logged_out;
END;
CREATE TRIGGER interval_tenant_sums_update AFTER UPDATE ON interval_stats
WHEN NEW.scope_kind IN ('queue', 'agent')
BEGIN
    INSERT INTO interval_tenant_sums (tenant_id, scope_kind, start_ms, n_offered, n_answered, n_within, n_abandoned, n_short_abandoned, n_exited, n_callback, n_voicemail, n_handled, n_accepted, n_rejected, n_no_answer, n_busy, n_failed, s_answer_wait, s_abandon_wait, s_talk, s_wrapup, s_handle, s_available, s_on_call, s_wrap_up, s_reserved, s_on_break, s_logged_out)
    VALUES (OLD.tenant_id, OLD.scope_kind, OLD.start_ms, -OLD.n_offered, -OLD.n_answered, -OLD.n_within, -OLD.n_abandoned, -OLD.n_short_abandoned, -OLD.n_exited, -OLD.n_callback, -OLD.n_voicemail, -OLD.n_handled, -OLD.n_accepted, -OLD.n_rejected, -OLD.n_no_answer, -OLD.n_busy, -OLD.n_failed, -OLD.s_answer_wait, -OLD.s_abandon_wait, -OLD.s_talk, -OLD.s_wrapup, -OLD.s_handle, -OLD.s_available, -OLD.s_on_call, -OLD.s_wrap_up, -OLD.s_reserved, -OLD.s_on_break, -OLD.s_logged_out)
    ON CONFLICT (tenant_id, scope_kind, start_ms) DO UPDATE SET
        n_offered = interval_tenant_sums.n_offered + excluded.n_offered,
        n_answered = interval_tenant_sums.n_answered + excluded.n_answered,
        n_within = interval_tenant_sums.n_within + excluded.n_within,
        n_abandoned = interval_tenant_sums.n_abandoned + excluded.n_abandoned,
        n_short_abandoned = interval_tenant_sums.n_short_abandoned + excluded.n_short_abandoned,
        n_exited = interval_tenant_sums.n_exited + excluded.n_exited,
        n_callback = interval_tenant_sums.n_callback + excluded.n_callback,
        n_voicemail = interval_tenant_sums.n_voicemail + excluded.n_voicemail,
        n_handled = interval_tenant_sums.n_handled + excluded.n_handled,
        n_accepted = interval_tenant_sums.n_accepted + excluded.n_accepted,
        n_rejected = interval_tenant_sums.n_rejected + excluded.n_rejected,
        n_no_answer = interval_tenant_sums.n_no_answer + excluded.n_no_answer,
        n_busy = interval_tenant_sums.n_busy + excluded.n_busy,
        n_failed = interval_tenant_sums.n_failed + excluded.n_failed,
        s_answer_wait = interval_tenant_sums.s_answer_wait + excluded.s_answer_wait,
        s_abandon_wait = interval_tenant_sums.s_abandon_wait + excluded.s_abandon_wait,
        s_talk = interval_tenant_sums.s_talk + excluded.s_talk,
        s_wrapup = interval_tenant_sums.s_wrapup + excluded.s_wrapup,
        s_handle = interval_tenant_sums.s_handle + excluded.s_handle,
        s_available = interval_tenant_sums.s_available + excluded.s_available,
        s_on_call = interval_tenant_sums.s_on_call + excluded.s_on_call,
        s_wrap_up = interval_tenant_sums.s_wrap_up + excluded.s_wrap_up,
        s_reserved = interval_tenant_sums.s_reserved + excluded.s_reserved,
        s_on_break = interval_tenant_sums.s_on_break + excluded.s_on_break,
        s_logged_out = interval_tenant_sums.s_logged_out + excluded.s_logged_out;
    INSERT INTO interval_tenant_sums (tenant_id, scope_kind, start_ms, n_offered, n_answered, n_within, n_abandoned, n_short_abandoned, n_exited, n_callback, n_voicemail, n_handled, n_accepted, n_rejected, n_no_answer, n_busy, n_failed, s_answer_wait, s_abandon_wait, s_talk, s_wrapup, s_handle, s_available, s_on_call, s_wrap_up, s_reserved, s_on_break, s_logged_out)
    VALUES (NEW.tenant_id, NEW.scope_kind, NEW.start_ms, NEW.n_offered, NEW.n_answered, NEW.n_within, NEW.n_abandoned, NEW.n_short_abandoned, NEW.n_exited, NEW.n_callback, NEW.n_voicemail, NEW.n_handled, NEW.n_accepted, NEW.n_rejected, NEW.n_no_answer, NEW.n_busy, NEW.n_failed, NEW.s_answer_wait, NEW.s_abandon_wait, NEW.s_talk, NEW.s_wrapup, NEW.s_handle, NEW.s_available, NEW.s_on_call, NEW.s_wrap_up, NEW.s_reserved, NEW.s_on_break, NEW.s_logged_out)
    ON CONFLICT (tenant_id, scope_kind, start_ms) DO UPDATE SET
        n_offered = interval_tenant_sums.n_offered + excluded.n_offered,
        n_answered = interval_tenant_sums.n_answered + excluded.n_answered,
        n_within = interval_tenant_sums.n_within + excluded.n_within,
        n_abandoned = interval_tenant_sums.n_abandoned + excluded.n_abandoned,
        n_short_abandoned = interval_tenant_sums.n_short_abandoned + excluded.n_short_abandoned,
        n_exited = interval_tenant_sums.n_exited + excluded.n_exited,
        n_callback = interval_tenant_sums.n_callback + excluded.n_callback,
        n_voicemail = interval_tenant_sums.n_voicemail + excluded.n_voicemail,
        n_handled = interval_tenant_sums.n_handled + excluded.n_handled,
        n_accepted = interval_tenant_sums.n_accepted + excluded.n_accepted,
        n_rejected = interval_tenant_sums.n_rejected + excluded.n_rejected,
        n_no_answer = interval_tenant_sums.n_no_answer + excluded.n_no_answer,
        n_busy = interval_tenant_sums.n_busy + excluded.n_busy,
        n_failed = interval_tenant_sums.n_failed + excluded.n_failed,
        s_answer_wait = interval_tenant_sums.s_answer_wait + excluded.s_answer_wait,
        s_abandon_wait = interval_tenant_sums.s_abandon_wait + excluded.s_abandon_wait,
        s_talk = interval_tenant_sums.s_talk + excluded.s_talk,
        s_wrapup = interval_tenant_sums.s_wrapup + excluded.s_wrapup,
        s_handle = interval_tenant_sums.s_handle + excluded.s_handle,
        s_available = interval_tenant_sums.s_available + excluded.s_available,
        s_on_call = interval_tenant_sums.s_on_call + excluded.s_on_call,
        s_wrap_up = interval_tenant_sums.s_wrap_up + excluded.s_wrap_up,
        s_reserved = interval_tenant_sums.s_reserved + excluded.s_reserved,
        s_on_break = interval_tenant_sums.s_on_break + excluded.s_on_break,
        s_logged_out = interval_tenant_sums.s_logged_out + excluded.s_logged_out;
END;
CREATE TRIGGER interval_tenant_sums_delete AFTER DELETE ON interval_stats
WHEN OLD.scope_kind IN ('queue', 'agent')
BEGIN
    INSERT INTO interval_tenant_sums (tenant_id, scope_kind, start_ms, n_offered, n_answered, n_within, n_abandoned, n_short_abandoned, n_exited, n_callback, n_voicemail, n_handled, n_accepted, n_rejected, n_no_answer, n_busy, n_failed, s_answer_wait, s_abandon_wait, s_talk, s_wrapup, s_handle, s_available, s_on_call, s_wrap_up, s_reserved, s_on_break, s_logged_out)
    VALUES (OLD.tenant_id, OLD.scope_kind, OLD.start_ms, -OLD.n_offered, -OLD.n_answered, -OLD.n_within, -OLD.n_abandoned, -OLD.n_short_abandoned, -OLD.n_exited, -OLD.n_callback, -OLD.n_voicemail, -OLD.n_handled, -OLD.n_accepted, -OLD.n_rejected, -OLD.n_no_answer, -OLD.n_busy, -OLD.n_failed, -OLD.s_answer_wait, -OLD.s_abandon_wait, -OLD.s_talk, -OLD.s_wrapup, -OLD.s_handle, -OLD.s_available, -OLD.s_on_call, -OLD.s_wrap_up, -OLD.s_reserved, -OLD.s_on_break, -OLD.s_logged_out)
    ON CONFLICT (tenant_id, scope_kind, start_ms) DO UPDATE SET
        n_offered = interval_tenant_sums.n_offered + excluded.n_offered,
        n_answered = interval_tenant_sums.n_answered + excluded.n_answered,
        n_within = interval_tenant_sums.n_within + excluded.n_within,
        n_abandoned = interval_tenant_sums.n_abandoned + excluded.n_abandoned,
        n_short_abandoned = interval_tenant_sums.n_short_abandoned + excluded.n_short_abandoned,
        n_exited = interval_tenant_sums.n_exited + excluded.n_exited,
        n_callback = interval_tenant_sums.n_callback + excluded.n_callback,
        n_voicemail = interval_tenant_sums.n_voicemail + excluded.n_voicemail,
        n_handled = interval_tenant_sums.n_handled + excluded.n_handled,
        n_accepted = interval_tenant_sums.n_accepted + excluded.n_accepted,
        n_rejected = interval_tenant_sums.n_rejected + excluded.n_rejected,
        n_no_answer = interval_tenant_sums.n_no_answer + excluded.n_no_answer,
        n_busy = interval_tenant_sums.n_busy + excluded.n_busy,
        n_failed = interval_tenant_sums.n_failed + excluded.n_failed,
        s_answer_wait = interval_tenant_sums.s_answer_wait + excluded.s_answer_wait,
        s_abandon_wait = interval_tenant_sums.s_abandon_wait + excluded.s_abandon_wait,
        s_talk = interval_tenant_sums.s_talk + excluded.s_talk,
        s_wrapup = interval_tenant_sums.s_wrapup + excluded.s_wrapup,
        s_handle = interval_tenant_sums.s_handle + excluded.s_handle,
        s_available = interval_tenant_sums.s_available + excluded.s_available,
        s_on_call = interval_tenant_sums.s_on_call + excluded.s_on_call,
        s_wrap_up = interval_tenant_sums.s_wrap_up + excluded.s_wrap_up,
        s_reserved = interval_tenant_sums.s_reserved + excluded.s_reserved,
        s_on_break = interval_tenant_sums.s_on_break + excluded.s_on_break,
        s_logged_out = interval_tenant_sums.s_logged_out + excluded.s_logged_out;
END;
