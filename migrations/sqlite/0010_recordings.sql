-- switchyard schema, version 10: call recordings. Keep in step with ../postgres/0010_recordings.sql
-- (the same table, columns and indexes; only the spelling of the float type differs).
--
-- One row per recording, keyed by the recording's uuid. Write before you act, as for calls
-- (0006): the engine writes an open row (status 'recording', no end, no figures) before the
-- capture starts, and the final record replaces it; a restart reads the open rows to close the
-- recordings that were running. History: no foreign keys, no CHECK on the engine's names
-- (mode, capture, status), for the reasons 0001 gives.
--
-- agents is a JSON array of agent ids; spans a JSON array of the silent stretches; waveform a
-- JSON document (per-channel peaks and silence, the drawn peaks) or 'null' until measured.
CREATE TABLE recordings (
    id             TEXT             NOT NULL PRIMARY KEY,
    tenant_id      TEXT             NOT NULL,
    call_id        TEXT             NOT NULL,
    leg            TEXT             NOT NULL,
    queue_id       BIGINT           NOT NULL,
    agents         TEXT             NOT NULL,
    caller_number  TEXT             NOT NULL,
    mode           TEXT             NOT NULL,
    capture        TEXT             NOT NULL,
    fell_back      BOOLEAN          NOT NULL,
    stereo         BOOLEAN          NOT NULL,
    path           TEXT             NOT NULL,
    started_at     BIGINT           NOT NULL,
    ended_at       BIGINT           NULL,
    status         TEXT             NOT NULL,
    error          TEXT             NULL,
    duration_ms    BIGINT           NULL,
    sample_rate    INTEGER          NULL,
    channels       INTEGER          NULL,
    bytes          BIGINT           NULL,
    silence_ratio  REAL             NULL,
    spans          TEXT             NOT NULL,
    waveform       TEXT             NOT NULL
);
-- A call's recordings, oldest first; `id` ends the index for that order.
CREATE INDEX recordings_tenant_call ON recordings (tenant_id, call_id, started_at, id);
-- Search by date (a later listing pages on (started_at, id) like calls).
CREATE INDEX recordings_tenant_started ON recordings (tenant_id, started_at, id);
-- The open rows are few, the history long (see 0006).
CREATE INDEX recordings_open ON recordings (started_at) WHERE status = 'recording';
