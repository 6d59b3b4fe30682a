-- switchyard schema, version 23: the wallboard's stored thresholds, and the open interval's
-- counters carried over a graceful restart. Same text on both backends.
--
-- One row per tenant: the thresholds of its wallboard tiles (JSON, checked by the API).
CREATE TABLE wallboard_settings (
    tenant_id   TEXT    NOT NULL PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    settings    TEXT    NOT NULL,
    updated_at  BIGINT  NOT NULL
);

-- What a queue counted in the 15-minute interval that was open when the server stopped
-- gracefully: the engine writes closed intervals only, and a new process starts its first
-- interval empty (its close would overwrite a row of the same start), so these counters are
-- in no interval row. The wallboard's "today" adds them. One row per stop (append-only: two
-- stops in one quarter hour are two rows).
CREATE TABLE wallboard_carry (
    tenant_id  TEXT    NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    queue_id   BIGINT  NOT NULL,
    start_ms   BIGINT  NOT NULL,
    saved_at   BIGINT  NOT NULL,
    counters   TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, start_ms, queue_id, saved_at)
);
