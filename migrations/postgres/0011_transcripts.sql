-- switchyard schema, version 11: recording transcripts and their analysis. Keep in step with
-- ../sqlite/0011_transcripts.sql (the same columns; the full-text index differs by backend).
--
-- One row per recording that has a transcript, keyed by the recording's uuid, written whole by
-- `PUT /v1/recordings/{id}/transcript` (an external speech and AI service) and replaced whole
-- by the next PUT. No foreign key to `recordings`: a recording's row is deleted and
-- re-inserted when its final record replaces its open one (0010), which a cascade would turn
-- into losing the transcript. Whoever deletes a recording deletes its transcript too.
--
-- segments:  JSON array of {channel?, speaker?, start_ms, end_ms, text, confidence?}
-- full_text: the segments' texts joined by newlines, what `q` searches
-- sentiment: NULL or one of 'positive', 'neutral', 'negative', 'mixed' (a label, not a score:
--            what speech-analytics services give per call, and what a filter can match)
-- quality_score: NULL or 0..=100; tags: JSON array of strings; updated_at: unix ms
--
-- SQLite keeps a `seq` rowid for its FTS5 index; PostgreSQL needs none.
CREATE TABLE recording_transcripts (
    recording_id   TEXT             NOT NULL PRIMARY KEY,
    tenant_id      TEXT             NOT NULL,
    segments       TEXT             NOT NULL,
    full_text      TEXT             NOT NULL,
    sentiment      TEXT             NULL,
    summary        TEXT             NULL,
    quality_score  DOUBLE PRECISION NULL,
    tags           TEXT             NOT NULL,
    updated_at     BIGINT           NOT NULL
);

-- Full-text search: an expression index, so no tsvector column to keep in step. 'simple':
-- lower-cased words, no stemming and no stop words, like SQLite's unicode61 tokenizer, so a
-- word matches the same rows on both backends (and transcripts come in many languages).
-- Queries must spell the expression exactly as here to use the index.
CREATE INDEX recording_transcripts_fts ON recording_transcripts
    USING GIN (to_tsvector('simple', full_text));
