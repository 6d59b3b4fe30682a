-- Secrets the platform makes for itself on first use, shared by every instance on this
-- database: `ids` keys the permutation that shows store ids to the API (api/src/ids.rs).
CREATE TABLE platform_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
