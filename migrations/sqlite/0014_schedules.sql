-- switchyard schema, version 14: business-hours schedules (the dialplan crate's documents),
-- one row per schedule of a tenant. Keep in step with ../postgres/0014_schedules.sql.
--
-- config is the schedule as the API took it (time zone, weekly ranges, overrides, holidays,
-- the manual switch), validated whole before it is written; flows refer to a schedule by id.
CREATE TABLE schedules (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
config      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    UNIQUE (tenant_id, name)
);
