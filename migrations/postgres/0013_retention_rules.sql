-- switchyard schema, version 13: a recording knows the campaign whose dial it was, and
-- retention can differ per queue and per campaign. Keep in step with
-- ../sqlite/0013_retention_rules.sql (the same table, columns and indexes).
--
-- The days that apply to a recording are its campaign's rule, else its queue's rule, else
-- the tenant's recording_retention_days (0012); none of them: kept until deleted. A rule
-- may keep recordings longer than the tenant's default or shorter.
ALTER TABLE recordings ADD COLUMN campaign_id BIGINT NULL;
-- Search by campaign.
CREATE INDEX recordings_tenant_campaign ON recordings (tenant_id, campaign_id, started_at, id);
CREATE TABLE recording_retention_rules (
    tenant_id TEXT    NOT NULL,
    -- 'queue' or 'campaign'
    scope     TEXT    NOT NULL,
    scope_id  BIGINT  NOT NULL,
    days      INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, scope, scope_id)
);
