-- switchyard schema, version 4 (PostgreSQL): campaign attempts found by their leg. Keep in step with
-- ../sqlite/0004_attempt_legs.sql (the same index).
--
-- An attempt is one dial and its leg (the originate's uuid) is its identity: the store reads
-- the legs of a batch before writing it, so that the same attempt written twice is a no-op and
-- another attempt under a leg already stored is refused, not added. Not UNIQUE: databases
-- written before this version may hold two attempts of one leg (the demo's fake switch reused
-- its uuids across runs), and the migration must not fail on them.
CREATE INDEX campaign_attempts_leg ON campaign_attempts (leg);
