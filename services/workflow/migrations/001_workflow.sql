-- Port-in requests: the aggregate as JSON, without PIN and account number, which are sealed
-- (Fernet) in `secrets` and deleted (NULL) once the request ends.
CREATE TABLE port_in_requests (
    port_in_request_sid  text PRIMARY KEY,
    account_sid          text NOT NULL,
    status               text NOT NULL,
    revision             integer NOT NULL,
    received_at          timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    state                jsonb NOT NULL,
    secrets              bytea
);
CREATE INDEX port_in_requests_by_status ON port_in_requests (status, updated_at DESC);

-- Each number of a request and where it stands.
CREATE TABLE port_in_numbers (
    port_in_request_sid  text NOT NULL REFERENCES port_in_requests ON DELETE CASCADE,
    phone_number         text NOT NULL,
    position             integer NOT NULL,
    status               text NOT NULL,
    reason_code          text,
    country              text,
    port_date            date,
    updated_at           timestamptz NOT NULL,
    state                jsonb NOT NULL,
    PRIMARY KEY (port_in_request_sid, phone_number)
);
CREATE INDEX port_in_numbers_by_number ON port_in_numbers (phone_number);

-- Every transition, with its cause (an event id, or timer:<id>) and time; also events recorded
-- as ignored, and notes (a cancellation denied, an alert raised, a fix that never came).
CREATE TABLE transitions (
    id                   bigserial PRIMARY KEY,
    port_in_request_sid  text NOT NULL,
    at                   timestamptz NOT NULL,
    cause_event_id       text NOT NULL,
    phone_number         text,
    status_from          text,
    status_to            text,
    reason_code          text,
    reason               text,
    kind                 text NOT NULL CHECK (kind IN ('transition', 'ignored', 'note'))
);
CREATE INDEX transitions_by_request ON transitions (port_in_request_sid, id);

-- Per-number porting fees owed once a number completed (Canada), for billing.
CREATE TABLE porting_fees (
    port_in_request_sid  text NOT NULL,
    phone_number         text NOT NULL,
    amount               numeric(12, 2) NOT NULL,
    currency             text NOT NULL,
    completed_at         timestamptz NOT NULL,
    cause_event_id       text NOT NULL,
    PRIMARY KEY (port_in_request_sid, phone_number)
);

-- Events that arrived before their request (or their revision): applied when it arrives.
CREATE TABLE parked_events (
    id                   bigserial PRIMARY KEY,
    port_in_request_sid  text NOT NULL,
    event_type           text NOT NULL,
    event_id             text NOT NULL,
    event_source         text NOT NULL,
    event_time           timestamptz,
    traceparent          text NOT NULL,
    data                 jsonb NOT NULL,
    reason               text NOT NULL,
    parked_at            timestamptz NOT NULL
);
CREATE INDEX parked_events_by_request ON parked_events (port_in_request_sid, id);
