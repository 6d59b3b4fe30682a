-- switchyard schema, version 18: webhook endpoints and their delivery log. Keep in step with
-- ../postgres/0018_webhooks.sql (the same tables and index; only the id column's spelling differs).
--
-- An endpoint: where a tenant's events go (events: a JSON array of event types, empty for
-- all), and its signing secrets (a JSON array, newest first, of {secret, created_at_ms,
-- expires_at_ms}: a rotated-out secret signs alongside the new one until it expires, so
-- receivers can switch over). disabled_reason says why an endpoint stopped (410 Gone, failing
-- for 5 days); failing_since starts the 5-day count and is cleared by a delivery.
CREATE TABLE webhook_endpoints (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url             TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    events          TEXT    NOT NULL,
    secrets         TEXT    NOT NULL,
    enabled         BOOLEAN NOT NULL,
    disabled_reason TEXT    NULL,
    failing_since   BIGINT  NULL,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, id);

-- Every attempt to deliver a message to an endpoint: when, the answer's status, how long it
-- took, the first bytes of the answer (at most 1 KiB) or the transport error. The API shows
-- an endpoint's newest 100. History: no foreign keys (0001).
CREATE TABLE webhook_attempts (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant_id   TEXT    NOT NULL,
    endpoint_id BIGINT  NOT NULL,
    message_id  TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    at          BIGINT  NOT NULL,
    status      INTEGER NULL,
    latency_ms  BIGINT  NOT NULL,
    response    TEXT    NULL,
    error       TEXT    NULL,
    delivered   BOOLEAN NOT NULL
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, at, id);
