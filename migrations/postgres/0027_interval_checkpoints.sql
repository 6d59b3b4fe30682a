-- switchyard schema, version 27: the open 15-minute interval's counters, saved by each running
-- process every few seconds and at a graceful stop (engine `stats::OpenInterval`, JSON). The
-- engine writes closed intervals only; a process started in the same interval adds the saved
-- counters to its own (so the interval's record and the wallboard hold both parts), and a
-- saved interval that has since passed becomes that interval's records where none were
-- written. One row per process run; a start takes the rows it absorbed over in one
-- transaction with its own. Same text on both backends.
CREATE TABLE interval_checkpoints (
    run_id    TEXT    NOT NULL PRIMARY KEY,
    start_ms  BIGINT  NOT NULL,
    saved_at  BIGINT  NOT NULL,
    counters  TEXT    NOT NULL
);

-- Version 23's stand-in, which carried a graceful stop's queue counters for the wallboard
-- alone (never the history): what it holds counted for the wallboard's figures of the day it
-- was filed, and nothing reads it now.
DROP TABLE wallboard_carry;
