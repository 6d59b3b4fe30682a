-- switchyard schema, version 16: voicemail. Keep in step with ../sqlite/0016_voicemail.sql
-- (the same columns, table and index).
--
-- A voicemail message is a recording (0010) of kind 'voicemail': its audio goes through the
-- recordings' storage (0012) like a call's. mailbox_queue / mailbox_agent name the box it was
-- left in (the queue's or the agent's store id); both stay NULL on a call's recording. No
-- foreign keys, as for all history (0001).
ALTER TABLE recordings ADD COLUMN kind TEXT NOT NULL DEFAULT 'call';
ALTER TABLE recordings ADD COLUMN mailbox_queue BIGINT NULL;
ALTER TABLE recordings ADD COLUMN mailbox_agent BIGINT NULL;
-- A tenant's voicemail, newest first; `id` ends the index for that order (the listing pages
-- on (started_at, id) like calls).
CREATE INDEX recordings_tenant_kind ON recordings (tenant_id, kind, started_at, id);

-- Whether a message was heard, and when and by which key. Kept apart from the recording's
-- row: a recording's final row replaces its open row (DELETE and INSERT, see the store's
-- recordings module), which must not wipe what a listener did. No row: not heard.
CREATE TABLE voicemail_heard (
    recording_id TEXT   NOT NULL PRIMARY KEY,
    tenant_id    TEXT   NOT NULL,
    heard_at     BIGINT NOT NULL,
    heard_by     TEXT   NULL
);
