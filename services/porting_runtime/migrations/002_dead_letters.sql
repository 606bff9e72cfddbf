-- Dead letters: an identity that survives a broker whose offsets restart, raw header names,
-- sealed content, and room for records whose bytes could not be had.

-- A place (topic, partition, offset) can hold a different record after the broker restarts
-- from offset zero; only the same place with the same content (and timestamp, when known) is
-- a redelivery. Rows from before keep a hash of their value: they were unique by place alone.
ALTER TABLE dead_letters ADD COLUMN content_hash bytea;
UPDATE dead_letters SET content_hash = sha256(coalesce(value, ''::bytea));
ALTER TABLE dead_letters ALTER COLUMN content_hash SET NOT NULL;
DO $$
DECLARE old_identity text;
BEGIN
    SELECT conname INTO old_identity FROM pg_constraint
    WHERE conrelid = 'dead_letters'::regclass AND contype = 'u';
    EXECUTE format('ALTER TABLE dead_letters DROP CONSTRAINT %I', old_identity);
END $$;
ALTER TABLE dead_letters ADD CONSTRAINT dead_letters_identity
    UNIQUE (consumer, source_topic, source_partition, source_offset, content_hash);

-- Header names as bytes: a name may hold NUL or be invalid UTF-8, which text refuses.
ALTER TABLE dead_letters ADD COLUMN raw_header_names bytea[];
UPDATE dead_letters SET raw_header_names =
    ARRAY(SELECT convert_to(n, 'UTF8') FROM unnest(header_names) WITH ORDINALITY AS h(n, i) ORDER BY i);
ALTER TABLE dead_letters DROP COLUMN header_names;
ALTER TABLE dead_letters RENAME COLUMN raw_header_names TO header_names;
ALTER TABLE dead_letters ALTER COLUMN header_names SET NOT NULL;

-- value and each header value are Fernet tokens when sealed (a NULL header value stays NULL);
-- rows from before are in clear until seal_legacy_dead_letters seals them.
ALTER TABLE dead_letters ADD COLUMN sealed boolean NOT NULL DEFAULT false;
-- false for a record the client library could not decode: its place and error only, no bytes.
ALTER TABLE dead_letters ADD COLUMN original_kept boolean NOT NULL DEFAULT true;
-- Key, value and headers in bytes, for showing and for the truncation note without unsealing.
ALTER TABLE dead_letters ADD COLUMN original_size bigint;
ALTER TABLE dead_letters ADD COLUMN source_timestamp bigint;
-- The copy sent to the dead-letter topic was cut to fit the broker; the row keeps every byte.
ALTER TABLE dead_letters ADD COLUMN published_truncated boolean NOT NULL DEFAULT false;
CREATE INDEX dead_letters_age ON dead_letters (dead_lettered_at);

-- The shape record_dead_letters passes a batch in, so a batch is one INSERT statement.
CREATE TYPE dead_letter_input AS (
    consumer            text,
    source_topic        text,
    source_partition    integer,
    source_offset       bigint,
    source_timestamp    bigint,
    content_hash        bytea,
    key                 bytea,
    value               bytea,
    header_names        bytea[],
    header_values       bytea[],
    error               text,
    event_id            text,
    original_kept       boolean,
    original_size       bigint,
    published_truncated boolean
);

-- Outbox rows holding a whole stored event (dead letters, redrives) are sealed: value is a
-- Fernet token of the packed value and headers (see sealed_outbox.py), header columns empty.
ALTER TABLE outbox ADD COLUMN sealed boolean NOT NULL DEFAULT false;
CREATE INDEX outbox_sent_age ON outbox (sent_at) WHERE sent_at IS NOT NULL;
-- Sent rows are history only, and may hold clear copies of dead letters: not kept.
DELETE FROM outbox WHERE sent_at IS NOT NULL;
