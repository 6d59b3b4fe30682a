-- switchyard schema, version 17: inbound callers' journeys through their flows. Keep in step
-- with ../postgres/0017_call_journeys.sql (the same table and index).
--
-- One row per caller that walked a flow, keyed by the caller's leg (the call's id, as in
-- calls and cdrs): every node visited, the keys pressed and what came of them (a JSON
-- document), and where the flow sent the caller (NULL: the caller hung up in the flow). Written
-- once the walk is over; the same row again replaces it (a replay). A caller who left in the
-- flow has this row and its CDR, and no calls row: it never reached a queue. No foreign keys,
-- as for all history (0001).
CREATE TABLE call_journeys (
    call_id       TEXT   NOT NULL PRIMARY KEY,
    tenant_id     TEXT   NOT NULL,
    flow_id       TEXT   NOT NULL,
    dialled       TEXT   NOT NULL,
    caller_number TEXT   NOT NULL,
    started_at    BIGINT NOT NULL,
    ended_at      BIGINT NOT NULL,
    routed        TEXT   NULL,
    journey       TEXT   NOT NULL
);
-- A tenant's journeys by time (IVR reports page on (started_at, call_id)).
CREATE INDEX call_journeys_tenant_started ON call_journeys (tenant_id, started_at, call_id);
