-- The worker's claim reads the oldest due pending deliveries (ORDER BY next_at, message_id
-- LIMIT n). On (state, next_at) that is a scan of every pending row and its dead index
-- entries (each claim and each filed attempt rewrites the row), then a sort: 74 ms for a
-- backlog of 31,000 on PostgreSQL. A partial index in the claim's own order holds only
-- pending rows and lets the claim stop after n.
DROP INDEX webhook_deliveries_due;
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (next_at, message_id)
    WHERE state = 'pending';
