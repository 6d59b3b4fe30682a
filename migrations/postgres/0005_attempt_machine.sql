-- switchyard schema, version 5 (PostgreSQL): whether detection said an answering machine, per
-- attempt. Keep in step with ../sqlite/0005_attempt_machine.sql (the same column).
--
-- The abandon ledger rebuilt after a restart counts an attempt by the same rule as the running
-- engine (a machine is never a person, even when it was sent to an agent and its outcome is
-- "connected"); the outcome alone cannot say so. Attempts written before this version read as
-- not machines, as the reload counted them before.
ALTER TABLE campaign_attempts ADD COLUMN machine BOOLEAN NOT NULL DEFAULT FALSE;
