-- switchyard schema, version 19: agent state history and the webhook outbox. Keep in step with
-- ../postgres/0019_outbox_agent_states.sql (the same tables and indexes; only the id columns'
-- spelling differs).
--
-- Every state an agent entered (logged-out, available, on-break, reserved, on-call, wrap-up,
-- the engine's names), when, and the break reason. The time in a state is the time to the
-- agent's next row; the id orders rows of the same millisecond. A row written again (a journal
-- replay) is the same (agent, at, state) and is skipped. History: no foreign keys (0001).
CREATE TABLE agent_states (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT    NOT NULL,
    agent_id  BIGINT  NOT NULL,
    at        BIGINT  NOT NULL,
    state     TEXT    NOT NULL,
    reason    TEXT    NULL
);
CREATE UNIQUE INDEX agent_states_agent_at ON agent_states (tenant_id, agent_id, at, state);
CREATE INDEX agent_states_tenant_at ON agent_states (tenant_id, at);

-- The webhook outbox: one row per event, written in the same transaction as the record that
-- caused it (a call's row, an agent's state, a campaign's state, a recording's row). id is the
-- message id receivers see as webhook-id, derived from what caused it, so the same record
-- written twice makes the same message once. data is the event's payload with store ids
-- (the sender shows them as the API does). seq orders the fan-out; fanned says the message
-- has its delivery rows (one per endpoint that wanted it when it was fanned out).
CREATE TABLE webhook_outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE,
    tenant_id   TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    occurred_at BIGINT  NOT NULL,
    data        TEXT    NOT NULL,
    fanned      BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX webhook_outbox_unfanned ON webhook_outbox (fanned, seq);
CREATE INDEX webhook_outbox_tenant ON webhook_outbox (tenant_id, occurred_at, seq);

-- One message owed to one endpoint: pending (next_at: when it is next tried), delivered, or
-- failed (the schedule ran out, or the endpoint was disabled). attempts counts every try, a
-- replay's included; first_at starts the schedule's clock (a replay restarts it). claimed_at:
-- an attempt is under way since then (next_at is pushed past it meanwhile); a start finds the
-- attempts its predecessor did not finish by it and makes them due at once.
CREATE TABLE webhook_deliveries (
    message_id  TEXT    NOT NULL,
    endpoint_id BIGINT  NOT NULL,
    tenant_id   TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts    INTEGER NOT NULL,
    first_at    BIGINT  NOT NULL,
    next_at     BIGINT  NULL,
    claimed_at  BIGINT  NULL,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (message_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, state);
