-- Recipients whose customer deliveries are ending undelivered: one ops alert per outage, not per
-- delivery (domain/outages.py). A row is an outage in progress; the recipient's next delivery
-- deletes it. `recipient` is the outage key (an e-mail address in lower case, a URL as given).
CREATE TABLE IF NOT EXISTS unreachable_recipients (
    channel text NOT NULL,
    recipient text NOT NULL,
    began_at timestamptz NOT NULL,          -- the first undelivered delivery of the outage
    alerted_at timestamptz NOT NULL,        -- when ops was last alerted of it
    alerted_delivery_id text NOT NULL,      -- the delivery whose failure raised that alert
    undelivered integer NOT NULL,           -- deliveries ended undelivered since began_at
    last_undelivered_at timestamptz NOT NULL,
    PRIMARY KEY (channel, recipient)
);
