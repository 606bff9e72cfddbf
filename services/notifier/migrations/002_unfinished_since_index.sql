-- The pending gauges ask how many notifications are unfinished and since when, across channels:
-- an index on ready_at alone serves that. 001 first shipped it keyed by (channel, ready_at), so a
-- database that ran that 001 gets it reshaped here; one whose 001 already had the new shape
-- keeps it (both statements are idempotent).
DROP INDEX IF EXISTS notifications_unfinished;
CREATE INDEX IF NOT EXISTS notifications_unfinished_since ON notifications (ready_at)
    WHERE state IN ('pending', 'sending', 'retrying');
