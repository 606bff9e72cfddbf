-- An outbox row is deleted once the broker acknowledged it (outbox_relay.py): the broker holds
-- the event from then on. Sent rows kept for a day were, at the target rate, ~100 million rows of
-- ~1.3 KB each, and marking them sent wrote each row a second time.
DELETE FROM outbox WHERE sent_at IS NOT NULL;
DROP INDEX IF EXISTS outbox_sent_age;
