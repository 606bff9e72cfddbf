-- The test handler's state: one row per effect, deliberately without a unique key,
-- so a second effect of the same event would show.
CREATE TABLE effects (
    id          bigserial PRIMARY KEY,
    request_sid text NOT NULL,
    event_id    text NOT NULL,
    worker_pid  integer NOT NULL  -- which process handled it
);
