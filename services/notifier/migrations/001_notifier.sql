-- Every notification the notifier owes: one row per (event, channel, recipient[, part]).
-- Recorded in the transaction that consumed its event; the delivery id is derived from the event,
-- so a replayed event finds its rows already there and records nothing twice.
CREATE TABLE notifications (
    delivery_id          text PRIMARY KEY,            -- webhook-id and Message-ID
    seq                  bigserial NOT NULL,          -- recording order: one recipient hears it in this order
    port_in_request_sid  text NOT NULL,
    channel              text NOT NULL CHECK (channel IN ('email', 'webhook')),
    audience             text NOT NULL CHECK (audience IN ('customer', 'ops')),
    recipient            text NOT NULL,               -- e-mail address or webhook URL
    kind                 text NOT NULL,               -- template name or webhook type
    payload              jsonb NOT NULL,              -- template context or webhook body (no secrets)
    phone_numbers        text[] NOT NULL DEFAULT '{}',
    cause_source         text NOT NULL,               -- the event's ce_source and ce_id
    cause_id             text NOT NULL,
    -- scheduled: waits for its date (routing reminder); pending: to send now; sending: claimed
    -- by a sender until lease_until; retrying: waits for its retry timer; then one of the ends.
    state                text NOT NULL CHECK (state IN ('scheduled', 'pending', 'sending', 'retrying',
                                                        'delivered', 'failed', 'gave_up', 'withdrawn')),
    recorded_at          timestamptz NOT NULL,
    ready_at             timestamptz NOT NULL,        -- when it became due: give-up time counts from here
    next_attempt_at      timestamptz,
    lease_until          timestamptz,
    attempts             integer NOT NULL DEFAULT 0,
    last_error           text,
    finished_at          timestamptz
);
CREATE INDEX notifications_by_request ON notifications (port_in_request_sid, recorded_at);
CREATE INDEX notifications_to_send ON notifications (channel, seq) WHERE state IN ('pending', 'sending');
-- What must go out before a notification: the earlier unfinished ones to the same recipient.
CREATE INDEX notifications_earlier ON notifications (port_in_request_sid, channel, recipient, seq)
    WHERE state IN ('pending', 'sending', 'retrying');
CREATE INDEX notifications_unfinished ON notifications (channel, ready_at)
    WHERE state IN ('pending', 'sending', 'retrying');
CREATE INDEX notifications_scheduled_reminders ON notifications (port_in_request_sid)
    WHERE state = 'scheduled';

-- Every attempt, with what came of it.
CREATE TABLE delivery_attempts (
    delivery_id   text NOT NULL REFERENCES notifications (delivery_id),
    attempt       integer NOT NULL,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL,
    -- interrupted: the notifier stopped before it learned the outcome; the next attempt resends
    -- with the same delivery id, so the receiver can recognise it.
    outcome       text NOT NULL CHECK (outcome IN ('delivered', 'retryable', 'failed', 'interrupted')),
    status_code   integer,
    detail        text NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
