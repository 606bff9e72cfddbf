-- The state of requests and numbers as json, not jsonb (issue 8: throughput). The service writes
-- the text pydantic makes and reads it back whole: nothing queries inside it, so PostgreSQL need
-- not parse it into jsonb on every save and print it again on every load. json keeps the text,
-- and so the order of a request's numbers, as written. It still takes -> and ->> for ad hoc reads.
ALTER TABLE port_in_requests ALTER COLUMN state TYPE json USING state::json;
ALTER TABLE port_in_numbers ALTER COLUMN state TYPE json USING state::json;
