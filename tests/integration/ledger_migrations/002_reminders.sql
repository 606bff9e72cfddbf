-- What the ledger's reminder timer did: one row per firing, deliberately without a unique
-- key, so a second firing of the same timer would show.
CREATE TABLE reminders_fired (
    id          bigserial PRIMARY KEY,
    request_sid text NOT NULL,
    instance    text NOT NULL
);
