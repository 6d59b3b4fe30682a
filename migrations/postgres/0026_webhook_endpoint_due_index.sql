-- The worker's claim on PostgreSQL walks each enabled endpoint's pending deliveries in due
-- order and stops at what it may take (api/src/store/outbox.rs, `pg`): its cost is what is
-- taken, whatever the statistics say, and a disabled or deleted endpoint's backlog (owed
-- until it is enabled again) is never read. Every claim and every filed attempt rewrites a
-- delivery row, and each index gets a new entry for it: the two indexes no query uses any
-- more go (0025's single due order, which made each claim step over such backlogs, and
-- (endpoint_id, state), which the new index covers for pending rows).
CREATE INDEX webhook_deliveries_endpoint_due ON webhook_deliveries (endpoint_id, next_at, message_id)
    WHERE state = 'pending';
DROP INDEX webhook_deliveries_pending;
DROP INDEX webhook_deliveries_endpoint;
