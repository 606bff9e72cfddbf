-- Accounts and their hierarchy; tokens are stored hashed.
CREATE TABLE accounts (
    account_sid       text PRIMARY KEY CHECK (account_sid ~ '^AC[0-9a-fA-F]{32}$'),
    parent_sid        text REFERENCES accounts (account_sid),
    auth_token_hash   text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- Number inventory: held by an account, or reserved while a port into it is under way.
CREATE TABLE inventory (
    phone_number         text PRIMARY KEY,
    account_sid          text NOT NULL,
    port_in_request_sid  text,              -- set while reserved by a port under way
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inventory_by_request ON inventory (port_in_request_sid) WHERE port_in_request_sid IS NOT NULL;

-- Operator-imported number blocks (NANP refinement of mobile vs landline, carriers, rate centers).
CREATE TABLE number_blocks (
    prefix        text PRIMARY KEY CHECK (prefix ~ '^[1-9][0-9]{0,14}$'),
    carrier_name  text NOT NULL,
    carrier_id    text NOT NULL,
    wireless      boolean NOT NULL,
    rate_center   text
);

-- Every check made, from events and from the HTTP API.
CREATE TABLE portability_checks (
    id                   bigserial PRIMARY KEY,
    port_in_request_sid  text,
    requested_by         text NOT NULL,      -- the event id, or the authenticated account
    target_account_sid   text NOT NULL,
    phone_number         text NOT NULL,
    portable             boolean NOT NULL,
    reason_code          integer,
    result               jsonb NOT NULL,
    checked_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX portability_checks_by_number ON portability_checks (phone_number, checked_at);
