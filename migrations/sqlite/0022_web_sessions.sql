-- switchyard schema, version 21: browser sessions and display tokens (the wallboard and agent
-- pages). Same text on both backends: nothing here is spelled differently.
--
-- A display token is a read-only credential of one tenant for wall screens: shown once,
-- stored as a prefix (to find the row) and the SHA-256 of the whole token, like api_keys.
-- It always expires.
CREATE TABLE display_tokens (
    id            TEXT    NOT NULL PRIMARY KEY,
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    prefix        TEXT    NOT NULL UNIQUE,
    hash          TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL,
    revoked_at    BIGINT  NULL,
    last_used_at  BIGINT  NULL
);
CREATE INDEX display_tokens_tenant ON display_tokens (tenant_id);

-- A browser session: made from an API key or a display token at POST /web/session; the
-- browser holds the random token in an HttpOnly cookie, the row only its SHA-256. Exactly
-- one of key_id / display_token_id names where it came from: the session is checked against
-- that credential on every verification, so revoking or expiring it ends the session too.
-- The role and agent are read from the key at each check; the copies here say what the
-- session was made as (for the audit of a sign-in, and for listing).
CREATE TABLE web_sessions (
    id                TEXT    NOT NULL PRIMARY KEY,
    token_hash        TEXT    NOT NULL UNIQUE,
    tenant_id         TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key_id            TEXT    NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    display_token_id  TEXT    NULL REFERENCES display_tokens (id) ON DELETE CASCADE,
    role              TEXT    NOT NULL,
    agent_id          BIGINT  NULL,
    created_at        BIGINT  NOT NULL,
    expires_at        BIGINT  NOT NULL,
    revoked_at        BIGINT  NULL,
    CHECK ((key_id IS NULL) <> (display_token_id IS NULL))
);
CREATE INDEX web_sessions_key ON web_sessions (key_id);
CREATE INDEX web_sessions_display ON web_sessions (display_token_id);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
