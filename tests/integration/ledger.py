"""A small test service on the shared runtime: it records an effect and publishes a follow-up."""

from __future__ import annotations

import os
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from porting_runtime import DueTimer, EventRejected, Route, RunningService, ServiceDefinition, ServiceSettings, TimerRoute
from schemas import AlertKind, CloudEvent, KafkaRecord, PortAlertRaised, PortRequested, encode
from tests.kafka_support import running_service

REJECTED_CUSTOMER = "Rule Breaker"


async def record_effect(event: CloudEvent[PortRequested], unit: Any) -> None:
    if event.data.losing_carrier_information.customer_name == REJECTED_CUSTOMER:
        raise EventRejected("the customer name breaks a rule")
    await record_effect_without_rules(event, unit)


async def record_effect_without_rules(event: CloudEvent[PortRequested], unit: Any) -> None:
    """The ledger after a fix is deployed: the rule that rejected events is gone."""
    await unit.connection.execute(
        "INSERT INTO effects (request_sid, event_id, worker_pid) VALUES ($1, $2, $3)",
        event.data.subject, event.attributes.id, os.getpid(),
    )
    unit.publish(PortAlertRaised(
        port_in_request_sid=event.data.subject, alert=AlertKind.REVIEW_SLA_BREACHED,
        message=f"effect of {event.attributes.id}", raised_at=datetime.now(UTC),
    ))


async def schedule_reminder(event: CloudEvent[PortRequested], unit: Any) -> None:
    """The ledger with a timer: a reminder a day after each request, fired once."""
    await record_effect_without_rules(event, unit)
    unit.schedule("reminder", event.data.subject, unit.now() + timedelta(days=1), {"revision": event.data.revision})


async def remind(timers: Sequence[DueTimer], unit: Any) -> None:
    await unit.connection.executemany(
        "INSERT INTO reminders_fired (request_sid, instance) VALUES ($1, $2)",
        [(t.key, f"{os.getpid()}:{id(unit.clock)}") for t in timers],
    )
    for timer in timers:
        unit.publish(PortAlertRaised(
            port_in_request_sid=timer.key, alert=AlertKind.REVIEW_SLA_BREACHED,
            message=f"reminder for revision {timer.data['revision']}", raised_at=unit.now(),
        ))


LEDGER = ServiceDefinition(
    name="ledger",
    migrations=Path(__file__).parent / "ledger_migrations",
    routes=lambda pool, settings: [Route(PortRequested, record_effect)],
    publishes=[PortAlertRaised.event_type],
)


REMINDING_LEDGER = ServiceDefinition(
    name="ledger",
    migrations=LEDGER.migrations,
    routes=lambda pool, settings: [Route(PortRequested, schedule_reminder)],
    publishes=LEDGER.publishes,
    timers=lambda pool, settings: [TimerRoute("reminder", remind)],
)


FIXED_LEDGER = ServiceDefinition(
    name="ledger",
    migrations=LEDGER.migrations,
    routes=lambda pool, settings: [Route(PortRequested, record_effect_without_rules)],
    publishes=LEDGER.publishes,
)


def running(settings: ServiceSettings, definition: ServiceDefinition = LEDGER,
            **options: Any) -> contextlib.AbstractAsyncContextManager[RunningService]:
    options.setdefault("serve_http", False)
    return running_service(definition, settings, **options)


def port_requested_record(settings: ServiceSettings, event: PortRequested, **options: Any) -> KafkaRecord:
    return encode(event, source="tests", topic=settings.topic(event.event_type), **options)



# The generic helpers live in tests/kafka_support.py; re-exported for the tests that import them from here.
from tests.kafka_support import (  # noqa: E402, F401
    collect,
    committed_offsets,
    fetchval,
    publish,
    rows_are,
    rows_at_least,
    wait_until,
)
