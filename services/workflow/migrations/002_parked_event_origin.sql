-- What a parked event needs to be dead-lettered when its request arrives and finds it invalid:
-- the bytes and headers it came with (sealed, like every stored copy of a whole event) and its
-- place (topic, partition, offset), taken from the inbox when it is parked. NULL for events
-- parked before: their dead letter is re-encoded from `data` and the attributes.
ALTER TABLE parked_events ADD COLUMN original bytea;
ALTER TABLE parked_events ADD COLUMN source_topic text;
ALTER TABLE parked_events ADD COLUMN source_partition integer;
ALTER TABLE parked_events ADD COLUMN source_offset bigint;

-- Events parked before had no timer watching them: give each the one it would have had
-- (parking.py: PARKED_EVENT_ALERT_AFTER, 24 hours from parking), so none waits silently.
INSERT INTO timers (kind, key, due_at, data)
SELECT 'parked_event_overdue', port_in_request_sid || ':parked:' || event_source || ':' || event_id,
       parked_at + interval '24 hours',
       jsonb_build_object('port_in_request_sid', port_in_request_sid, 'event_type', event_type,
                          'event_id', event_id, 'event_source', event_source, 'parked_at', parked_at)
  FROM parked_events
ON CONFLICT (kind, key) WHERE failed_at IS NULL DO NOTHING;
