"""The event contract, without any server."""

from __future__ import annotations

import json

import pydantic
import pytest
from pydantic import ValidationError

from schemas import (
    CarrierNumberResponse,
    ContractViolation,
    PortScheduled,
    PortRequested,
    decode,
    encode,
)
from schemas.export import stale_files
from schemas.tracing import child_traceparent, is_valid_traceparent, new_traceparent, trace_id_of

from ..factories import port_requested, port_requested_payload


def test_the_committed_json_schemas_and_asyncapi_document_match_the_models():
    assert stale_files() == [], "run `make schemas` and commit the result"


def test_an_event_survives_the_cloudevents_round_trip_in_binary_mode():
    event = port_requested()
    record = encode(event, source="portal")
    headers = dict(record.headers)

    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_type"] == b"porting.port-requested.v1"
    assert headers["ce_subject"] == record.key == event.port_in_request_sid.encode()
    assert headers["content-type"] == b"application/json"
    assert is_valid_traceparent(headers["traceparent"].decode())
    decoded = decode(record.headers, record.value)
    assert decoded.data == event
    assert decoded.attributes.id == headers["ce_id"].decode()


def test_a_decoded_event_keeps_the_bytes_it_came_from_for_a_later_dead_letter():
    record = encode(port_requested(), source="portal")
    headers = [*record.headers, ("x-vendor", b"\xff\x00")]
    value = record.value.replace(b"{", b"{ ", 1)  # bytes a re-encoding would not give back

    decoded = decode(headers, value)

    assert decoded.origin is not None
    assert (list(decoded.origin.headers), decoded.origin.value) == (headers, value)
    assert decoded == decode(record.headers, record.value), "the origin is not part of the event's equality"


def test_every_event_gets_its_own_id():
    event = port_requested()
    assert dict(encode(event, source="a").headers)["ce_id"] != dict(encode(event, source="a").headers)["ce_id"]


def test_a_follow_up_continues_the_trace_of_its_cause():
    cause = decode(*_record_parts(encode(port_requested(), source="portal"))).attributes
    follow_up = encode(port_requested(), source="workflow", caused_by=cause)
    traceparent = dict(follow_up.headers)["traceparent"].decode()

    assert trace_id_of(traceparent) == trace_id_of(cause.traceparent)
    assert traceparent != cause.traceparent


def test_a_broken_traceparent_starts_a_new_trace_instead_of_losing_the_event():
    record = encode(port_requested(), source="portal", traceparent="garbage")
    assert is_valid_traceparent(decode(record.headers, record.value).attributes.traceparent)
    assert is_valid_traceparent(child_traceparent(None))


def test_each_span_of_a_trace_and_each_new_trace_gets_an_id_of_its_own():
    parent = new_traceparent()
    children = {child_traceparent(parent) for _ in range(10_000)}
    traces = {new_traceparent() for _ in range(10_000)}
    assert len(children) == len(traces) == 10_000
    assert all(is_valid_traceparent(t) for t in children | traces)
    assert {trace_id_of(child) for child in children} == {trace_id_of(parent)}


def _record_parts(record):
    return record.headers, record.value


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h, v: ([x for x in h if x[0] != "ce_id"], v), r"missing header\(s\) ce_id"),
        (lambda h, v: ([(n, b"0.3" if n == "ce_specversion" else x) for n, x in h], v), "specversion"),
        (lambda h, v: ([(n, b"text/plain" if n == "content-type" else x) for n, x in h], v), "content-type"),
        (lambda h, v: ([(n, b"porting.port-requested.v2" if n == "ce_type" else x) for n, x in h], v), "unknown event type or version"),
        (lambda h, v: ([(n, b"KW" + b"0" * 32 if n == "ce_subject" else x) for n, x in h], v), "differs from the data's request sid"),
        (lambda h, v: (h, b"{"), "not valid JSON"),
        (lambda h, v: (h, None), "no data"),
    ],
)
def test_a_message_that_breaks_the_envelope_is_a_contract_violation(mutate, reason):
    record = encode(port_requested(), source="portal")
    headers, value = mutate(record.headers, record.value)
    with pytest.raises(ContractViolation, match=reason):
        decode(headers, value)


def test_an_event_on_another_events_topic_is_a_contract_violation():
    record = encode(port_requested(), source="portal")
    with pytest.raises(ContractViolation, match="does not belong on"):
        decode(record.headers, record.value, expected_type="porting.cancel-requested.v1")


def test_unknown_fields_are_refused_so_a_publishers_typo_is_not_silently_lost():
    with pytest.raises(ValidationError, match="notification_email"):
        PortRequested.model_validate({**port_requested_payload(), "notification_email": ["a@b.co"]})


def test_values_of_the_wrong_json_type_are_refused_rather_than_coerced():
    record = encode(port_requested(), source="portal")
    payload = json.loads(record.value)
    payload["revision"] = "2"
    with pytest.raises(ContractViolation, match="revision"):
        decode(record.headers, json.dumps(payload).encode())


def test_a_malformed_number_in_a_port_request_is_kept_as_given_for_its_own_result():
    event = port_requested(phone_numbers=[{"phone_number": "415 555 0100"}, {"phone_number": "+14155550101"}])
    assert event.phone_numbers[0].phone_number == "415 555 0100"


def test_a_revision_beyond_the_integer_the_workflow_keeps_it_in_is_refused_by_the_contract():
    assert port_requested(revision=2**31 - 1).revision == 2**31 - 1
    for revision in (2**31, 2**63):
        with pytest.raises(ValidationError, match="revision"):
            port_requested(revision=revision)


def _with_customer_name(name: str) -> dict:
    payload = port_requested_payload()
    payload["losing_carrier_information"] = {**payload["losing_carrier_information"], "customer_name": name}
    return payload


@pytest.mark.parametrize("payload, field", [
    (port_requested_payload(phone_numbers=[{"phone_number": "+14155550100\x00"}]), "phone_number"),
    (port_requested_payload(phone_numbers=[{"phone_number": "+14155550100", "pin": "12\x0034"}]), "pin"),
    (_with_customer_name("Ada\x00Lovelace"), "customer_name"),
    (_with_customer_name("Ada\nLovelace"), "customer_name"),
    (port_requested_payload(notification_emails=["ada\x07@example.com"]), "notification_emails"),
], ids=["NUL in a number", "NUL in a PIN", "NUL in a name", "line break in a name", "bell in an e-mail"])
def test_control_characters_in_text_from_outside_are_refused_by_the_contract(payload, field):
    # PostgreSQL text cannot hold a NUL: every consumer now refuses it first, with the field named.
    with pytest.raises(ValidationError, match=field):
        PortRequested.model_validate(payload)


def test_long_text_from_outside_keeps_its_line_breaks_and_tabs():
    reason = "The PIN does not match.\n\tAsk the losing carrier for the port-out PIN."
    response = CarrierNumberResponse(phone_number="+14155550100", outcome="rejected",
                                     rejection_reason_code="INVALID_PIN", rejection_reason=reason)
    assert response.rejection_reason == reason
    with pytest.raises(ValidationError, match="rejection_reason"):
        CarrierNumberResponse(phone_number="+14155550100", outcome="rejected",
                              rejection_reason_code="INVALID_PIN", rejection_reason="PIN\x00")


def test_a_port_request_is_bounded_to_a_thousand_numbers():
    numbers = [{"phone_number": f"+1415555{i:04d}"} for i in range(1001)]
    with pytest.raises(ValidationError, match="at most 1000"):
        port_requested(phone_numbers=numbers)


def test_the_pin_and_account_number_never_show_in_a_logged_model():
    event = port_requested(phone_numbers=[{"phone_number": "+14155550100", "pin": "8642"}])
    assert "8642" not in repr(event)
    assert "ACC-991" not in repr(event)


def test_a_rejected_carrier_response_needs_its_reason_code():
    with pytest.raises(ValidationError, match="rejection_reason_code"):
        CarrierNumberResponse(phone_number="+14155550100", outcome="rejected")
    accepted = CarrierNumberResponse(phone_number="+14155550100", outcome="accepted")
    assert accepted.rejection_reason_code is None


def test_a_port_schedule_needs_a_known_time_zone_and_an_ordered_window():
    base = {"port_in_request_sid": "KW" + "a" * 32, "phone_numbers": ["+14155550100"], "port_date": "2027-01-05",
            "port_time_range_start": "09:00:00", "port_time_range_end": "12:00:00", "time_zone": "America/Toronto"}
    assert PortScheduled.model_validate(base).time_zone == "America/Toronto"
    with pytest.raises(ValidationError, match="unknown time zone"):
        PortScheduled.model_validate({**base, "time_zone": "Mars/Olympus"})
    with pytest.raises(ValidationError, match="before"):
        PortScheduled.model_validate({**base, "port_time_range_end": "08:00:00"})


@pytest.mark.parametrize(("day", "start", "end", "zone"), [
    ("2000-01-01", "00:00:00", "00:01:00", "Etc/GMT-14"), ("2999-12-31", "23:00:00", "23:59:00", "Etc/GMT+12")])
def test_a_port_window_that_lies_outside_the_calendar_in_utc_is_refused_with_its_own_reason(day, start, end, zone):
    with pytest.raises(ValidationError, match="must lie in years 2000-2999 in UTC too"):
        PortScheduled.model_validate({**SCHEDULE, "port_date": day, "port_time_range_start": start,
                                      "port_time_range_end": end, "time_zone": zone})
    assert PortScheduled.model_validate({**SCHEDULE, "port_date": day, "port_time_range_start": start,
                                         "port_time_range_end": end, "time_zone": "UTC"}).time_zone == "UTC"


@pytest.mark.parametrize("zone", ["localtime", "right/UTC", "posix/America/Toronto", "Factory", "america/toronto"])
def test_a_time_zone_whose_meaning_depends_on_the_host_is_refused(zone):
    # ZoneInfo opens these where the host has them: "localtime" is whatever zone the machine is set to.
    with pytest.raises(ValidationError, match="unknown time zone"):
        PortScheduled.model_validate({**SCHEDULE, "time_zone": zone})


SCHEDULE = {"port_in_request_sid": "KW" + "a" * 32, "phone_numbers": ["+14155550100"], "port_date": "2027-01-05",
            "port_time_range_start": "09:00:00", "port_time_range_end": "12:00:00", "time_zone": "America/Toronto"}


@pytest.mark.parametrize("port_date", ["0001-01-01", "1999-12-31", "3000-01-01", "9999-12-31"])
def test_a_port_date_outside_the_years_of_the_porting_calendar_is_refused_naming_it(port_date):
    # Year 1 and 9999 passed the contract, then overflowed the notifier's and the workflow's arithmetic.
    with pytest.raises(ValidationError, match="port_date"):
        PortScheduled.model_validate({**SCHEDULE, "port_date": port_date})
    with pytest.raises(ValidationError, match="target_port_in_date"):
        PortRequested.model_validate(port_requested_payload(target_port_in_date=port_date))


@pytest.mark.parametrize("start, end", [("10:00:00+14:00", "11:00:00"), ("10:00:00", "11:00:00Z")])
def test_a_window_time_with_an_offset_is_refused_naming_it_not_a_failure_of_the_window_check(start, end):
    # Local times are read in the time zone given beside them; one aware end made the check raise TypeError.
    with pytest.raises(ValidationError, match="local time without an offset"):
        PortScheduled.model_validate({**SCHEDULE, "port_time_range_start": start, "port_time_range_end": end})
    with pytest.raises(ValidationError, match="target_port_in_time_range"):
        PortRequested.model_validate(port_requested_payload(target_port_in_time_range_start=start,
                                                            target_port_in_time_range_end=end))


@pytest.mark.parametrize("ce_time", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "1999-12-31T23:59:59Z"])
def test_a_ce_time_outside_the_years_of_the_porting_calendar_is_a_contract_violation(ce_time):
    record = encode(port_requested(), source="portal")
    headers = [(n, ce_time.encode() if n == "ce_time" else v) for n, v in record.headers]
    with pytest.raises(ContractViolation, match="must lie in years 2000-2999"):
        decode(headers, record.value)


def test_a_c1_control_character_in_text_from_outside_is_refused_as_the_envelope_refuses_it():
    payload = port_requested_payload()
    payload["losing_carrier_information"] = {**payload["losing_carrier_information"], "customer_name": "Ada\x9b31m"}
    with pytest.raises(ValidationError, match="customer_name"):
        PortRequested.model_validate(payload)


def test_a_validator_that_fails_on_a_records_data_makes_it_a_contract_violation_not_a_crash(monkeypatch):
    import schemas.cloudevents

    class Fragile(PortRequested):
        @pydantic.model_validator(mode="after")
        def _compares_what_cannot_be_compared(self) -> Fragile:
            raise TypeError("can't compare offset-naive and offset-aware times")

    monkeypatch.setattr(schemas.cloudevents, "event_for_type", lambda _type: Fragile)
    record = encode(port_requested(), source="portal")
    with pytest.raises(ContractViolation, match="could not be validated: TypeError: can't compare"):
        decode(record.headers, record.value)
