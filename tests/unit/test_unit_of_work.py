"""The unit of work refuses what could never be published, before it reaches the outbox."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from porting_runtime import EventConsumer, Route
from porting_runtime.failures import FollowUpRefused, classify
from porting_runtime.unit_of_work import UnitOfWork
from schemas import AlertKind, PortabilityChecked, PortAlertRaised, PortRequested

from ..factories import request_sid


def _alert(message: str = "late") -> PortAlertRaised:
    return PortAlertRaised(port_in_request_sid=request_sid(), alert=AlertKind.PORT_DATE_OVERDUE, message=message,
                           raised_at=datetime.now(UTC))


def test_a_follow_up_larger_than_the_broker_takes_is_refused_as_a_fault_of_its_cause():
    unit = UnitOfWork(connection=None, source="ledger", max_message_bytes=10_000)  # type: ignore[arg-type]
    unit.publish(_alert())
    large = PortAlertRaised(port_in_request_sid=request_sid(), alert=AlertKind.PORT_DATE_OVERDUE, message="m",
                            phone_numbers=[f"+1415555{i:04d}" for i in range(1000)], raised_at=datetime.now(UTC))
    with pytest.raises(FollowUpRefused) as refused:
        unit.publish(large)
    assert "the broker takes at most 10000" in str(refused.value)
    assert classify(refused.value) == "record", "dead-letters the event that caused it instead of holding"
    assert len(unit.pending) == 1


def test_publishing_an_event_type_the_service_did_not_declare_is_refused():
    unit = UnitOfWork(connection=None, source="ledger",  # type: ignore[arg-type]
                      publishes=frozenset({PortAlertRaised.event_type}))
    unit.publish(_alert())
    with pytest.raises(FollowUpRefused, match="does not declare"):
        unit.publish(PortabilityChecked.model_construct(port_in_request_sid=request_sid()))


def test_two_routes_for_one_event_type_are_refused_at_start():
    async def handler(event, unit):
        return None

    with pytest.raises(ValueError, match="two routes"):
        EventConsumer(name="ledger", pool=None, routes=[Route(PortRequested, handler), Route(PortRequested, handler)])  # type: ignore[arg-type]
