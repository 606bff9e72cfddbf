-- CloudEvents identifies an event by source and id together: the inbox dedupes on the pair.
ALTER TABLE inbox ADD COLUMN event_source text NOT NULL DEFAULT '';
ALTER TABLE inbox DROP CONSTRAINT inbox_pkey;
ALTER TABLE inbox ADD PRIMARY KEY (consumer, event_source, event_id);
ALTER TABLE inbox ALTER COLUMN event_source DROP DEFAULT;

-- Outbox rows the broker can never accept are set aside with the reason, never retried forever.
ALTER TABLE outbox ADD COLUMN set_aside_at timestamptz;
ALTER TABLE outbox ADD COLUMN error text;
DROP INDEX outbox_unsent;
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL AND set_aside_at IS NULL;
CREATE INDEX outbox_set_aside ON outbox (id) WHERE set_aside_at IS NOT NULL;

-- Durable timers: one pending per (kind, key); a fired timer is deleted in the transaction
-- that handled it; one whose handler fails for good is kept with its error (failed_at).
CREATE TABLE timers (
    id            bigserial   PRIMARY KEY,
    kind          text        NOT NULL,
    key           text        NOT NULL,
    due_at        timestamptz NOT NULL,
    data          jsonb       NOT NULL DEFAULT '{}',
    traceparent   text,
    scheduled_at  timestamptz NOT NULL DEFAULT now(),
    failed_at     timestamptz,
    error         text
);
CREATE UNIQUE INDEX timers_pending ON timers (kind, key) WHERE failed_at IS NULL;
CREATE INDEX timers_due ON timers (due_at) WHERE failed_at IS NULL;

-- Stored copies of whole events (dead letters) are sealed at rest; the relay unseals them to send.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS sealed boolean NOT NULL DEFAULT false;
