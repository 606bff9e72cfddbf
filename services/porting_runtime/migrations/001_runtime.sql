-- What every service keeps: the inbox (dedupe), the outbox (follow-ups), dead letters.

CREATE TABLE inbox (
    consumer     text        NOT NULL,
    event_id     text        NOT NULL,
    event_type   text        NOT NULL,
    topic        text        NOT NULL,
    partition    integer     NOT NULL,
    "offset"     bigint      NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

CREATE TABLE outbox (
    id             bigserial   PRIMARY KEY,
    topic          text        NOT NULL,
    key            bytea,
    value          bytea,
    header_names   text[]      NOT NULL,
    header_values  bytea[]     NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    sent_at        timestamptz
);
-- The relay reads only what is unsent, in id order.
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

CREATE TABLE dead_letters (
    id              bigserial   PRIMARY KEY,
    consumer        text        NOT NULL,
    source_topic    text        NOT NULL,
    source_partition integer    NOT NULL,
    source_offset   bigint      NOT NULL,
    key             bytea,
    value           bytea,
    header_names    text[]      NOT NULL,
    header_values   bytea[]     NOT NULL,
    error           text        NOT NULL,
    event_id        text,
    dead_lettered_at timestamptz NOT NULL DEFAULT now(),
    redriven_at     timestamptz,
    UNIQUE (consumer, source_topic, source_partition, source_offset)
);
