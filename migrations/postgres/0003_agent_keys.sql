-- switchyard schema, version 3 (PostgreSQL): agent keys act for one agent. Keep in step with
-- ../sqlite/0003_agent_keys.sql (same column, constraint and index; only the spelling of the
-- constraint differs: SQLite adds it with the column, PostgreSQL as a table constraint).
--
-- `agent_id` is the agent an `agent` key may act for (its own state, dispositions of its own
-- calls). Only agent keys have one. Keys issued before this version stay unbound (NULL): they
-- keep reading as before, and the API refuses them every agent-scoped write.
-- ON DELETE SET NULL only lets the agent's row go: the store revokes the agent's keys in the
-- same transaction first, so a deleted agent's key stops working instead of becoming unbound.

ALTER TABLE api_keys ADD COLUMN agent_id BIGINT NULL
    REFERENCES agents (id) ON DELETE SET NULL;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_agent_role
    CHECK (agent_id IS NULL OR role = 'agent');
CREATE INDEX api_keys_agent ON api_keys (agent_id);
