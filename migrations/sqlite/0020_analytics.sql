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
