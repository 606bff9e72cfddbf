-- The gauges' index of unfinished notifications matched the claim's "earlier e-mail to the same
-- recipient" check exactly (same state predicate), so with statistics from a quiet moment (an
-- ANALYZE while everything was delivered) the planner walked it whole for every pending row:
-- a claim took 15.9 s on 16,000 notifications (make bench's pipeline collapse, PostgreSQL 21-23 ms
-- of CPU a request). Its predicate now names ready_at too, which only the gauges' query states,
-- so the claim reaches rows by notifications_pending and notifications_earlier whatever the
-- statistics say.
DROP INDEX IF EXISTS notifications_unfinished_since;
CREATE INDEX notifications_unfinished_since ON notifications (ready_at)
    WHERE state IN ('pending', 'sending', 'retrying') AND ready_at IS NOT NULL;
