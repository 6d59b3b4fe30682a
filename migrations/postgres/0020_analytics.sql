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
    s_answer_wait DOUBLE PRECISION NOT NULL DEFAULT 0,
    s_abandon_wait DOUBLE PRECISION NOT NULL DEFAULT 0,
    s_talk DOUBLE PRECISION NOT NULL DEFAULT 0,
    s_wrapup DOUBLE PRECISION NOT NULL DEFAULT 0,
    s_handle DOUBLE PRECISION NOT NULL DEFAULT 0,
    s_available DOUBLE PRECISION NOT NULL DEFAULT 0,
    s_on_call DOUBLE PRECISION NOT NULL DEFAULT 0,
    s_wrap_up DOUBLE PRECISION NOT NULL DEFAULT 0,
    s_reserved DOUBLE PRECISION NOT NULL DEFAULT 0,
    s_on_break DOUBLE PRECISION NOT NULL DEFAULT 0,
    s_logged_out DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, scope_kind, start_ms)
);
INSERT INTO interval_tenant_sums (tenant_id, scope_kind, start_ms, n_offered, n_answered, n_within, n_abandoned, n_short_abandoned, n_exited, n_callback, n_voicemail, n_handled, n_accepted, n_rejected, n_no_answer, n_busy, n_failed, s_answer_wait, s_abandon_wait, s_talk, s_wrapup, s_handle, s_available, s_on_call, s_wrap_up, s_reserved, s_on_break, s_logged_out)
    SELECT tenant_id, scope_kind, start_ms, SUM(n_offered), SUM(n_answered), SUM(n_within), SUM(n_abandoned), SUM(n_short_abandoned), SUM(n_exited), SUM(n_callback), SUM(n_voicemail), SUM(n_handled), SUM(n_accepted), SUM(n_rejected), SUM(n_no_answer), SUM(n_busy), SUM(n_failed), SUM(s_answer_wait), SUM(s_abandon_wait), SUM(s_talk), SUM(s_wrapup), SUM(s_handle), SUM(s_available), SUM(s_on_call), SUM(s_wrap_up), SUM(s_reserved), SUM(s_on_break), SUM(s_logged_out)
    FROM interval_stats WHERE scope_kind IN ('queue', 'agent') GROUP BY tenant_id, scope_kind, start_ms;
CREATE FUNCTION interval_tenant_sums_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.scope_kind IN ('queue', 'agent') THEN
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
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.scope_kind IN ('queue', 'agent') THEN
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
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER interval_tenant_sums_keep AFTER INSERT OR UPDATE OR DELETE ON interval_stats
    FOR EACH ROW EXECUTE FUNCTION interval_tenant_sums_keep();
