-- switchyard schema, version 24: sign-in links for the agent page. Same text on both backends.
--
-- An admin makes a short-lived, single-use link for one agent (`/agent#code=...`: the code in
-- the URL's fragment, so it never reaches a server log). The row keeps only the code's
-- SHA-256. Redeeming it sets `used_at` in the same statement that checks it (used once);
-- the agent's deletion deletes its links (revoked with the agent).
CREATE TABLE agent_sign_in_links (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id    BIGINT  NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    code_hash   TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    used_at     BIGINT  NULL
);
CREATE INDEX agent_sign_in_links_agent ON agent_sign_in_links (agent_id);
CREATE INDEX agent_sign_in_links_expires ON agent_sign_in_links (expires_at);
