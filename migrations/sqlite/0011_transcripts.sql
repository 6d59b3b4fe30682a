-- switchyard schema, version 11: recording transcripts and their analysis. Keep in step with
-- ../postgres/0011_transcripts.sql (the same columns; the full-text index differs by backend).
--
-- One row per recording that has a transcript, keyed by the recording's uuid (`recording_id`,
-- unique), written whole by `PUT /v1/recordings/{id}/transcript` (an external speech and AI
-- service) and replaced whole by the next PUT. No foreign key to `recordings`: a recording's
-- row is deleted and re-inserted when its final record replaces its open one (0010), which a
-- cascade would turn into losing the transcript. Whoever deletes a recording deletes its
-- transcript too (the triggers below keep the search index in step with any DELETE).
--
-- segments:  JSON array of {channel?, speaker?, start_ms, end_ms, text, confidence?}
-- full_text: the segments' texts joined by newlines, what `q` searches
-- sentiment: NULL or one of 'positive', 'neutral', 'negative', 'mixed' (a label, not a score:
--            what speech-analytics services give per call, and what a filter can match)
-- quality_score: NULL or 0..=100; tags: JSON array of strings; updated_at: unix ms
--
-- `seq` is the row's rowid, declared so that VACUUM keeps it: the FTS index refers to rows by
-- rowid, and SQLite may renumber an undeclared rowid.
CREATE TABLE recording_transcripts (
    seq            INTEGER          PRIMARY KEY,
    recording_id   TEXT             NOT NULL UNIQUE,
    tenant_id      TEXT             NOT NULL,
    segments       TEXT             NOT NULL,
    full_text      TEXT             NOT NULL,
    sentiment      TEXT             NULL,
    summary        TEXT             NULL,
    quality_score  REAL             NULL,
    tags           TEXT             NOT NULL,
    updated_at     BIGINT           NOT NULL
);

-- Full-text search: an FTS5 table with external content (the text is stored once, in the table
-- above), kept in step by triggers rather than by the store code, so that every writer (the
-- store, a retention job, an operator with the sqlite3 shell) updates the index whether or not
-- it knows of it. The store writes with INSERT ... ON CONFLICT DO UPDATE, which fires the
-- update trigger (INSERT OR REPLACE would delete without firing the delete trigger).
-- unicode61 without removing diacritics: PostgreSQL's 'simple' configuration keeps them too,
-- so a word matches the same rows on both backends.
CREATE VIRTUAL TABLE recording_transcripts_fts USING fts5(
    full_text,
    content = 'recording_transcripts',
    content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 0'
);
CREATE TRIGGER recording_transcripts_fts_insert AFTER INSERT ON recording_transcripts BEGIN
    INSERT INTO recording_transcripts_fts (rowid, full_text) VALUES (new.seq, new.full_text);
END;
CREATE TRIGGER recording_transcripts_fts_delete AFTER DELETE ON recording_transcripts BEGIN
    INSERT INTO recording_transcripts_fts (recording_transcripts_fts, rowid, full_text)
        VALUES ('delete', old.seq, old.full_text);
END;
CREATE TRIGGER recording_transcripts_fts_update AFTER UPDATE ON recording_transcripts BEGIN
    INSERT INTO recording_transcripts_fts (recording_transcripts_fts, rowid, full_text)
        VALUES ('delete', old.seq, old.full_text);
    INSERT INTO recording_transcripts_fts (rowid, full_text) VALUES (new.seq, new.full_text);
END;
