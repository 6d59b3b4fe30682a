-- Nothing on SQLite: version 26 is PostgreSQL's claim index (see
-- ../postgres/0026_webhook_endpoint_due_index.sql). SQLite keeps 0025's index and its claim,
-- which meets the fan-out figure there; the version is taken so both backends stay numbered
-- alike.
SELECT 1;
