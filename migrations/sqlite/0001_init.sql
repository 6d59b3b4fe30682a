-- switchyard schema, version 1 (SQLite). Keep in step with ../postgres/0001_init.sql: the same
-- tables, columns, keys and constraints; only the spelling of types and autoincrement differs.
--
-- Portable column types (the store runs one SQL text on both backends): uuids are hyphenated
-- lowercase TEXT, times BIGINT unix milliseconds, JSON documents TEXT, flags BOOLEAN (0/1 here).
-- Queue, agent and skill ids are the engine's dense ids: AUTOINCREMENT so that an id is never
-- reused after a delete (history keeps pointing at the old object).
-- History tables (calls, cdrs, decision_traces, interval_stats) have no foreign keys: history
-- outlives the configuration it mentions, and one dangling id must not sink a whole batch.

CREATE TABLE tenants (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    disabled    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT    NOT NULL PRIMARY KEY,
    tenant_id     TEXT    NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL
        CHECK (role IN ('admin', 'supervisor', 'agent', 'read-only', 'platform-admin')),
    prefix        TEXT    NOT NULL UNIQUE,
    hash          TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    expires_at    BIGINT  NULL,
    revoked_at    BIGINT  NULL,
    last_used_at  BIGINT  NULL,
    -- platform-admin keys and only they have no tenant
    CHECK ((role = 'platform-admin') = (tenant_id IS NULL))
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE skills (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE queues (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    config      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE agents (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    config      TEXT    NOT NULL,
    presence    TEXT    NOT NULL DEFAULT 'null',
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE queue_members (
    queue_id    BIGINT  NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    agent_id    BIGINT  NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    level       INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    weight      INTEGER NOT NULL,
    PRIMARY KEY (queue_id, agent_id)
);
-- deleting an agent cascades through this
CREATE INDEX queue_members_agent ON queue_members (agent_id);

CREATE TABLE calls (
    id             TEXT    NOT NULL PRIMARY KEY,
    tenant_id      TEXT    NOT NULL,
    queue_id       BIGINT  NOT NULL,
    queues         TEXT    NOT NULL,
    agent_id       BIGINT  NULL,
    caller_number  TEXT    NOT NULL,
    outcome        TEXT    NOT NULL,
    arrived_at     BIGINT  NOT NULL,
    wait_ms        BIGINT  NOT NULL,
    talk_ms        BIGINT  NOT NULL,
    offers         INTEGER NOT NULL,
    synthetic      BOOLEAN NOT NULL,
    callback_leg   TEXT    NULL
);
-- listing pages newest first on (arrived_at, id); `id` ends each index for that order
CREATE INDEX calls_tenant_arrived ON calls (tenant_id, arrived_at, id);
CREATE INDEX calls_tenant_queue ON calls (tenant_id, queue_id, arrived_at, id);
CREATE INDEX calls_tenant_agent ON calls (tenant_id, agent_id, arrived_at, id);
CREATE INDEX calls_tenant_caller ON calls (tenant_id, caller_number);

CREATE TABLE cdrs (
    leg            TEXT    NOT NULL PRIMARY KEY,
    tenant_id      TEXT    NULL,
    call_id        TEXT    NULL,
    direction      TEXT    NOT NULL,
    caller_number  TEXT    NOT NULL,
    destination    TEXT    NOT NULL,
    hangup_cause   TEXT    NOT NULL,
    started_at     BIGINT  NOT NULL,
    answered_at    BIGINT  NULL,
    ended_at       BIGINT  NOT NULL,
    billsec_ms     BIGINT  NOT NULL,
    synthetic      BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX cdrs_tenant_call ON cdrs (tenant_id, call_id);
CREATE INDEX cdrs_tenant_started ON cdrs (tenant_id, started_at);

CREATE TABLE decision_traces (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL,
    call_id     TEXT    NOT NULL,
    at          BIGINT  NOT NULL,
    queue_id    BIGINT  NOT NULL,
    agent_id    BIGINT  NULL,
    trace       TEXT    NOT NULL
);
CREATE INDEX decision_traces_tenant_call ON decision_traces (tenant_id, call_id);

-- tenant_id '' = platform-wide and scope_id 0 = none (totals): NOT NULL sentinels so that the
-- primary key makes re-writing an interval an idempotent upsert on both backends.
CREATE TABLE interval_stats (
    tenant_id   TEXT    NOT NULL DEFAULT '',
    scope_kind  TEXT    NOT NULL CHECK (scope_kind IN ('queue', 'agent', 'total')),
    scope_id    BIGINT  NOT NULL DEFAULT 0,
    start_ms    BIGINT  NOT NULL,
    end_ms      BIGINT  NOT NULL,
    figures     TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, scope_kind, scope_id, start_ms)
);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT    NULL,
    key_id       TEXT    NULL,
    action       TEXT    NOT NULL,
    object_kind  TEXT    NOT NULL,
    object_id    TEXT    NOT NULL,
    at           BIGINT  NOT NULL,
    detail       TEXT    NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);
