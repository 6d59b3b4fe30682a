-- switchyard schema, version 15: inbound routing's IVR menus, flows and number plan (the
-- dialplan crate's documents). Keep in step with ../postgres/0015_inbound_flows.sql.
--
-- config is the document as the API took it, validated whole before it is written (a flow
-- against the tenant's queues, agents, schedules and stored menus). Flows name queues,
-- agents, schedules and stored menus by the ids the API shows, as strings; the API refuses
-- to delete what a flow or a number uses.
CREATE TABLE ivr_menus (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    config      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE flows (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    config      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    UNIQUE (tenant_id, name)
);

-- A dialled number reaches one tenant: number_key (the number normalised: separators and a
-- leading + removed) is unique across tenants. number is kept as the tenant wrote it.
CREATE TABLE numbers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    number      TEXT    NOT NULL,
    number_key  TEXT    NOT NULL UNIQUE,
    flow_id     BIGINT  NOT NULL REFERENCES flows (id),
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE INDEX numbers_by_tenant ON numbers (tenant_id, id);
CREATE INDEX numbers_by_flow ON numbers (flow_id);

-- The flow for a number the plan does not name; at most one per tenant.
CREATE TABLE number_defaults (
    tenant_id   TEXT    PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    flow_id     BIGINT  NOT NULL REFERENCES flows (id),
    updated_at  BIGINT  NOT NULL
);
