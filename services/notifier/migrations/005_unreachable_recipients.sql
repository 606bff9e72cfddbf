-- Recipients whose customer deliveries are ending undelivered: one ops alert per outage, not per
-- delivery (domain/outages.py). A row is an outage in progress; the recipient's next delivery
-- deletes it. `recipient` is the outage key (an e-mail address in lower case, a URL as given).
CREATE TABLE IF NOT EXISTS unreachable_recipients (
    channel text NOT NULL,
    recipient text NOT NULL,
    since timestamptz NOT NULL,           -- when the outage began, or ops was last reminded of it
    alerted_delivery_id text NOT NULL,    -- the delivery whose failure raised that alert
    undelivered integer NOT NULL,         -- deliveries ended undelivered since then
    last_undelivered_at timestamptz NOT NULL,
    PRIMARY KEY (channel, recipient)
);
