"""Failure classification, backoff, and the envelope `porting publish` builds."""

from __future__ import annotations

import json

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError

from porting_cli.publishing import PublishError, envelope
from porting_runtime.failures import Backoff, EventRejected, FollowUpRefused, classify, is_transient
from schemas import decode

from ..factories import port_requested_payload


@pytest.mark.parametrize("error", [
    ConnectionRefusedError(), asyncpg.PostgresConnectionError(), asyncpg.CannotConnectNowError(),
    asyncpg.SerializationError(), asyncpg.DeadlockDetectedError(), KafkaConnectionError(), TimeoutError(),
])
def test_an_unreachable_database_or_broker_is_a_failure_that_can_pass(error):
    assert is_transient(error)


@pytest.mark.parametrize("error", [
    asyncpg.UniqueViolationError(), asyncpg.CharacterNotInRepertoireError(), asyncpg.ProgramLimitExceededError(),
    asyncpg.NumericValueOutOfRangeError(), UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"),
    MessageSizeTooLargeError(), EventRejected("a rule"), FollowUpRefused("too large"),
])
def test_a_failure_that_belongs_to_one_record_is_classified_as_that_records(error):
    assert classify(error) == "record"


@pytest.mark.parametrize("error", [ValueError(), KeyError("x"), RuntimeError("a bug")])
def test_a_failure_of_unknown_cause_is_neither_retried_forever_nor_blamed_on_a_record_at_once(error):
    assert classify(error) == "unknown"


@pytest.mark.parametrize("error", [asyncpg.UndefinedTableError(), asyncpg.InsufficientPrivilegeError()])
def test_a_fault_of_the_deployment_holds_the_work_until_an_operator_fixes_it(error):
    assert classify(error) == "transient"


@pytest.mark.parametrize("error", [
    asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
    asyncpg.exceptions.TargetServerAttributeNotMatched("not a primary"),
])
def test_a_connection_whose_session_ended_under_it_or_a_server_mid_failover_is_a_failure_that_can_pass(error):
    assert classify(error) == "transient"


@pytest.mark.parametrize("error", [
    asyncpg.exceptions.InvalidCachedStatementError("cached plan must not change result type"),
    asyncpg.exceptions.OutdatedSchemaCacheError("type 'public.address' was changed"),
])
def test_prepared_statements_a_migration_made_stale_are_a_failure_that_can_pass(error):
    assert classify(error) == "transient"


@pytest.mark.parametrize("error", [
    asyncpg.InternalClientError("no decoder for OID 16385"),
    asyncpg.exceptions.ProtocolError("malformed array literal"),
])
def test_the_database_clients_other_internal_errors_stay_of_unknown_cause(error):
    assert classify(error) == "unknown"


def test_backoff_grows_and_stays_capped():
    backoff = Backoff(initial=0.1, maximum=2.0)
    delays = [backoff.next_delay() for _ in range(12)]
    assert delays[0] <= 0.1
    assert max(delays) <= 2.0
    assert delays[-1] >= 1.0
    backoff.reset()
    assert backoff.next_delay() <= 0.1


def test_porting_publish_wraps_a_valid_payload_in_the_cloudevents_envelope(tmp_path):
    payload = tmp_path / "request.json"
    payload.write_text(json.dumps(port_requested_payload()))
    record = envelope("porting.port-requested.v1", payload, event_id="fixed-id")
    assert decode(record.headers, record.value).attributes.id == "fixed-id"
    assert record.topic == "porting.port-requested.v1"


def test_porting_publish_refuses_an_invalid_payload_with_the_reason(tmp_path):
    payload = tmp_path / "request.json"
    payload.write_text(json.dumps({**port_requested_payload(), "revision": 0}))
    with pytest.raises(PublishError, match="revision"):
        envelope("porting.port-requested.v1", payload)


def test_porting_publish_sends_an_invalid_payload_as_it_is_when_asked_so_dead_letters_can_be_tried(tmp_path):
    payload = tmp_path / "request.json"
    payload.write_text("{broken")
    record = envelope("porting.port-requested.v1", payload, validate=False)
    assert record.value == b"{broken"
    assert dict(record.headers)["ce_type"] == b"porting.port-requested.v1"


def test_porting_publish_refuses_an_unknown_topic(tmp_path):
    payload = tmp_path / "x.json"
    payload.write_text("{}")
    with pytest.raises(PublishError, match="unknown topic"):
        envelope("porting.nope.v1", payload)
