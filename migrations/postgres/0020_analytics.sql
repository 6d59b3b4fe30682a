-- switchyard schema, version 20 (PostgreSQL). Keep in step with ../sqlite/0020_analytics.sql.
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
ALTER TABLE tenants ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';

ALTER TABLE interval_stats
    ADD COLUMN n_offered BIGINT GENERATED ALWAYS AS (COALESCE((figures::jsonb ->> 'offered')::bigint, 0)) STORED,
    ADD COLUMN n_answered BIGINT GENERATED ALWAYS AS (COALESCE((figures::jsonb ->> 'answered')::bigint, 0)) STORED,
    ADD COLUMN n_within BIGINT GENERATED ALWAYS AS (COALESCE((figures::jsonb ->> 'answered_within_sl')::bigint, 0)) STORED,
    ADD COLUMN n_abandoned BIGINT GENERATED ALWAYS AS (COALESCE((figures::jsonb ->> 'abandoned')::bigint, 0)) STORED,
    ADD COLUMN n_short_abandoned BIGINT GENERATED ALWAYS AS (COALESCE((figures::jsonb ->> 'short_abandoned')::bigint, 0)) STORED,
    ADD COLUMN n_exited BIGINT GENERATED ALWAYS AS (COALESCE((figures::jsonb ->> 'exited_total')::bigint, 0)) STORED,
    ADD COLUMN n_callback BIGINT GENERATED ALWAYS AS (COALESCE((figures::jsonb #>> '{exited,callback}')::bigint, 0)) STORED,
    ADD COLUMN n_voicemail BIGINT GENERATED ALWAYS AS (COALESCE((figures::jsonb #>> '{exited,voicemail}')::bigint, 0)) STORED,
    ADD COLUMN n_handled BIGINT GENERATED ALWAYS AS (COALESCE((figures::jsonb ->> 'handled')::bigint, 0)) STORED,
    ADD COLUMN n_accepted BIGINT GENERATED ALWAYS AS (COALESCE((figures::jsonb #>> '{offers,accepted}')::bigint, (figures::jsonb ->> 'accepted')::bigint, 0)) STORED,
    ADD COLUMN n_rejected BIGINT GENERATED ALWAYS AS (COALESCE((figures::jsonb #>> '{offers,rejected}')::bigint, (figures::jsonb ->> 'rejected')::bigint, 0)) STORED,
    ADD COLUMN n_no_answer BIGINT GENERATED ALWAYS AS (COALESCE((figures::jsonb #>> '{offers,no_answer}')::bigint, (figures::jsonb ->> 'no_answer')::bigint, 0)) STORED,
    ADD COLUMN n_busy BIGINT GENERATED ALWAYS AS (COALESCE((figures::jsonb #>> '{offers,busy}')::bigint, (figures::jsonb ->> 'busy')::bigint, 0)) STORED,
    ADD COLUMN n_failed BIGINT GENERATED ALWAYS AS (COALESCE((figures::jsonb #>> '{offers,failed}')::bigint, (figures::jsonb ->> 'failed')::bigint, 0)) STORED,
    ADD COLUMN s_answer_wait DOUBLE PRECISION GENERATED ALWAYS AS (COALESCE((figures::jsonb ->> 'asa_s')::double precision, 0) * COALESCE((figures::jsonb ->> 'answered')::double precision, 0)) STORED,
    ADD COLUMN s_abandon_wait DOUBLE PRECISION GENERATED ALWAYS AS (COALESCE((figures::jsonb ->> 'avg_abandon_wait_s')::double precision, 0) * COALESCE((figures::jsonb ->> 'abandoned')::double precision, 0)) STORED,
    ADD COLUMN s_talk DOUBLE PRECISION GENERATED ALWAYS AS (COALESCE((figures::jsonb ->> 'talk_s')::double precision, 0)) STORED,
    ADD COLUMN s_wrapup DOUBLE PRECISION GENERATED ALWAYS AS (COALESCE((figures::jsonb ->> 'wrapup_s')::double precision, 0)) STORED,
    ADD COLUMN s_handle DOUBLE PRECISION GENERATED ALWAYS AS (COALESCE((figures::jsonb ->> 'handle_s')::double precision, 0)) STORED,
    ADD COLUMN s_available DOUBLE PRECISION GENERATED ALWAYS AS (COALESCE((figures::jsonb #>> '{agent_time_s,available}')::double precision, (figures::jsonb #>> '{state_time_s,available}')::double precision, 0)) STORED,
    ADD COLUMN s_on_call DOUBLE PRECISION GENERATED ALWAYS AS (COALESCE((figures::jsonb #>> '{agent_time_s,on_call}')::double precision, (figures::jsonb #>> '{state_time_s,on_call}')::double precision, 0)) STORED,
    ADD COLUMN s_wrap_up DOUBLE PRECISION GENERATED ALWAYS AS (COALESCE((figures::jsonb #>> '{agent_time_s,wrap_up}')::double precision, (figures::jsonb #>> '{state_time_s,wrap_up}')::double precision, 0)) STORED,
    ADD COLUMN s_reserved DOUBLE PRECISION GENERATED ALWAYS AS (COALESCE((figures::jsonb #>> '{agent_time_s,reserved}')::double precision, (figures::jsonb #>> '{state_time_s,reserved}')::double precision, 0)) STORED,
    ADD COLUMN s_on_break DOUBLE PRECISION GENERATED ALWAYS AS (COALESCE((figures::jsonb #>> '{agent_time_s,on_break}')::double precision, (figures::jsonb #>> '{state_time_s,on_break}')::double precision, 0)) STORED,
    ADD COLUMN s_logged_out DOUBLE PRECISION GENERATED ALWAYS AS (COALESCE((figures::jsonb #>> '{agent_time_s,logged_out}')::double precision, (figures::jsonb #>> '{state_time_s,logged_out}')::double precision, 0)) STORED;

-- A tenant's rows of one kind over a range, whatever their queue or agent (the primary key
-- puts scope_id before start_ms).
CREATE INDEX interval_stats_range ON interval_stats (tenant_id, scope_kind, start_ms);
-- Repeat callers: the same caller number again within 24 h of a call.
CREATE INDEX calls_tenant_caller_arrived ON calls (tenant_id, caller_number, arrived_at);
-- A tenant's dials and dispositions over a range (the existing indexes are per campaign).
CREATE INDEX campaign_attempts_tenant_dialed ON campaign_attempts (tenant_id, dialed_at);
CREATE INDEX dispositions_tenant_at ON dispositions (tenant_id, at);
