-- switchyard schema, version 2 (SQLite): outbound campaigns. Keep in step with
-- ../postgres/0002_campaigns.sql (same tables, columns, keys; only type spelling differs).
--
-- Campaign ids are the engine's dense CampaignIds (AUTOINCREMENT: never reused), contact ids
-- its 64-bit ContactIds. Contacts, DNC entries and campaign history go with their campaign.

CREATE TABLE campaigns (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    config      TEXT    NOT NULL,
    state       TEXT    NOT NULL DEFAULT 'draft'
        CHECK (state IN ('draft', 'running', 'paused', 'completed')),
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE contacts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id      BIGINT  NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    tenant_id        TEXT    NOT NULL,
    -- E.164: '+' and digits
    number           TEXT    NOT NULL,
    -- IANA zone of the callee
    zone             TEXT    NOT NULL,
    -- the CSV's other columns, as a JSON object of strings
    fields           TEXT    NOT NULL DEFAULT '{}',
    status           TEXT    NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'done', 'dnc')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT  NOT NULL DEFAULT 0,
    last_outcome     TEXT    NULL,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    UNIQUE (campaign_id, number)
);
-- paging by status in id order; loading pending contacts at start
CREATE INDEX contacts_campaign_status ON contacts (campaign_id, status, id);
-- DNC additions close a tenant's contacts by number
CREATE INDEX contacts_tenant_number ON contacts (tenant_id, number);

-- Every dial: the campaign's history (no foreign keys, like the other history tables).
CREATE TABLE campaign_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT    NOT NULL,
    campaign_id  BIGINT  NOT NULL,
    contact_id   BIGINT  NOT NULL,
    leg          TEXT    NOT NULL,
    attempt      INTEGER NOT NULL,
    outcome      TEXT    NOT NULL,
    -- the engine's call id (a person answered), the agent connected
    call_id      BIGINT  NULL,
    agent_id     BIGINT  NULL,
    dialed_at    BIGINT  NOT NULL,
    answered_at  BIGINT  NULL,
    ended_at     BIGINT  NOT NULL
);
CREATE INDEX campaign_attempts_campaign ON campaign_attempts (campaign_id, id);
-- the ledger seed reads the last 31 days
CREATE INDEX campaign_attempts_dialed ON campaign_attempts (campaign_id, dialed_at);

CREATE TABLE dispositions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT    NOT NULL,
    campaign_id  BIGINT  NOT NULL,
    contact_id   BIGINT  NOT NULL,
    call_id      BIGINT  NOT NULL,
    agent_id     BIGINT  NULL,
    code         TEXT    NOT NULL,
    at           BIGINT  NOT NULL,
    retry_at     BIGINT  NULL
);
CREATE INDEX dispositions_campaign ON dispositions (campaign_id, id);

-- Do-not-call: tenant-wide when campaign_id is NULL, else for that campaign only. One entry
-- per number per scope (two partial unique indexes: NULLs are distinct in a plain UNIQUE).
CREATE TABLE dnc (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id    TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    campaign_id  BIGINT  NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    number       TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL
);
CREATE UNIQUE INDEX dnc_tenant_number ON dnc (tenant_id, number) WHERE campaign_id IS NULL;
CREATE UNIQUE INDEX dnc_campaign_number ON dnc (campaign_id, number) WHERE campaign_id IS NOT NULL;
