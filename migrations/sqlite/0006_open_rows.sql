-- switchyard schema, version 6: rows of work under way. Keep in step with the other backend's
-- 0006_open_rows.sql (the same indexes).
--
-- Write before you act: a call gets its row (outcome 'in-progress') before its first offer and
-- a campaign dial its attempt (outcome 'dialing') before its originate; the final record
-- replaces each. A restart reads these rows to give every call and dial that was under way its
-- record. Partial indexes: the open rows are few, the history is long.
CREATE INDEX calls_open ON calls (arrived_at) WHERE outcome = 'in-progress';
CREATE INDEX campaign_attempts_open ON campaign_attempts (campaign_id) WHERE outcome = 'dialing';
