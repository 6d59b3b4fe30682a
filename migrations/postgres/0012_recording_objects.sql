-- switchyard schema, version 12: where each recording's audio is kept. Keep in step with
-- ../sqlite/0012_recording_objects.sql (the same table, columns and indexes).
--
-- One row per recording whose capture left audio, keyed by the recording's uuid; the
-- recordings table (0010) stays the capture's record, this one is the storage's. Write
-- before you act:
--   spooled   the file is whole on this host (spool_path); the upload to object_key is due
--   stored    the object is written (location, sha256, bytes); the spool file is removed
--   deleting  a deletion has begun (retention or DELETE): the object and the spool file go
--   deleted   nothing is kept; the row stays for the audit trail
-- A restart uploads every 'spooled' row again (an object is written once: the same bytes
-- under its key are taken as done) and finishes every 'deleting' one. legal_hold keeps a
-- recording from retention and from DELETE until it is lifted.
CREATE TABLE recording_objects (
    recording_id TEXT    NOT NULL PRIMARY KEY,
    tenant_id    TEXT    NOT NULL,
    state        TEXT    NOT NULL,
    object_key   TEXT    NOT NULL,
    spool_path   TEXT    NOT NULL,
    location     TEXT    NULL,
    sha256       TEXT    NULL,
    bytes        BIGINT  NULL,
    spooled_at   BIGINT  NOT NULL,
    stored_at    BIGINT  NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT    NULL,
    legal_hold   BOOLEAN NOT NULL DEFAULT FALSE,
    deleted_at   BIGINT  NULL
);
-- The work a restart and the uploader take up, oldest first.
CREATE INDEX recording_objects_state ON recording_objects (state, spooled_at);
-- Days a tenant keeps its recordings; NULL keeps them until deleted.
ALTER TABLE tenants ADD COLUMN recording_retention_days INTEGER NULL;
