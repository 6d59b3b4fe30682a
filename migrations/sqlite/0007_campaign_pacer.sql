-- switchyard schema, version 7: what a campaign's pacer has learned, kept across restarts.
-- Keep in step with the other backend's 0007_campaign_pacer.sql (the same column).
--
-- The engine writes a snapshot (JSON) after the pacer learns something; a restart restores it,
-- so pacing goes on from what it knew instead of from its prior. NULL: nothing learned yet.
ALTER TABLE campaigns ADD COLUMN pacer TEXT NULL;
