"""What an operator reads: a running service's /metrics holds every family the runtime registers,
with the values of what it did; the timer gauges count what is due; every log line about one
event or timer carries its request sid and trace id, and the service name survives them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import structlog
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

import porting_runtime.metrics
from porting_runtime import EventRejected, MovableClock, Route, ServiceDefinition, TimerRoute
from porting_runtime.logs import event_context, get_logger, log_context
from porting_runtime.metrics import TIMERS_DUE, TIMERS_OVERDUE_SECONDS
from schemas import CloudEvent, KafkaRecord, PortRequested

from ..factories import port_requested, port_requested_payload
from ..handler_support import as_consumer_record, handler_harness
from ..kafka_support import outbox_at_rest
from .ledger import LEDGER, REMINDING_LEDGER, port_requested_record, publish, remind, running, wait_until

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
log = get_logger("tests.talkative_ledger")


# -- /metrics of a running service ---------------------------------------------------------------

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def _scrape(service: Any) -> tuple[set[str], Samples]:
    port = service.server.servers[0].sockets[0].getsockname()[1]
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    families = list(text_string_to_metric_families(response.text))
    samples = {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}
    return {f.name for f in families}, samples


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def _runtime_families() -> set[str]:
    return {m.describe()[0].name for m in vars(porting_runtime.metrics).values() if isinstance(m, MetricWrapperBase)}


async def _serving(service: Any) -> bool:
    server = getattr(service, "server", None)
    return bool(server and server.started)


async def test_a_running_services_metrics_hold_every_family_with_what_it_consumed_published_and_timed(settings):
    clock = MovableClock()
    topic = settings.topic(PortRequested.event_type)
    handled_before = porting_runtime.metrics.HANDLER_SECONDS.labels("ledger")._sum.get()  # noqa: SLF001
    async with running(settings, REMINDING_LEDGER, serve_http=True, clock=clock) as service:
        await wait_until(lambda: _serving(service), timeout=30)
        request = port_requested()
        await publish(settings, [port_requested_record(settings, request),
                                 KafkaRecord(topic, b"k", b"{not json", [("ce_id", b"broken-1")])])

        async def consumed() -> tuple[set[str], Samples] | None:
            names, samples = await _scrape(service)
            done = (_value(samples, "porting_events_total", consumer="ledger", topic=topic, outcome="handled") == 1
                    and _value(samples, "porting_events_total", consumer="ledger", topic=topic,
                               outcome="dead_lettered") == 1
                    and _value(samples, "porting_consumer_lag", consumer="ledger", topic=topic, partition="0") == 0
                    and _value(samples, "porting_outbox_backlog", service="ledger") == 0
                    and await outbox_at_rest(settings))
            return (names, samples) if done else None

        names, samples = await wait_until(consumed, timeout=60, what="the event handled, dead-lettered, relayed")
        assert _runtime_families() <= names, f"missing {_runtime_families() - names}"
        assert _value(samples, "porting_dead_letters_total", consumer="ledger", topic=topic) == 1
        assert _value(samples, "porting_handler_seconds_count", consumer="ledger") >= 1
        assert _value(samples, "porting_handler_seconds_sum", consumer="ledger") > handled_before
        assert _value(samples, "porting_outbox_published_total", service="ledger") >= 1
        for loop in ("consumer", "outbox-relay", "timers", "retention"):
            assert _value(samples, "porting_loop_up", service="ledger", loop=loop) == 1, loop
        assert _value(samples, "porting_timers_due", service="ledger") == 0, "the reminder is due tomorrow"
        assert _value(samples, "porting_timers_overdue_seconds", service="ledger") == 0

        # /health counts what the database keeps aside (Compose's healthcheck calls it every 10 s).
        async with httpx.AsyncClient() as client:
            port = service.server.servers[0].sockets[0].getsockname()[1]
            assert (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200
        _, samples = await _scrape(service)
        assert _value(samples, "porting_outbox_set_aside", service="ledger") == 0
        assert _value(samples, "porting_timers_failed", service="ledger") == 0

        # A reminder due a day ago that another instance holds (its row locked): the loop cannot
        # fire it, and says how many are due and how late the oldest is.
        holder = await asyncpg.connect(settings.database_url)
        try:
            async with holder.transaction():
                await holder.execute("SELECT id FROM timers WHERE key = $1 FOR UPDATE", request.port_in_request_sid)
                clock.advance(timedelta(days=2))

                async def reported_due() -> Samples | None:
                    _, samples = await _scrape(service)
                    return samples if _value(samples, "porting_timers_due", service="ledger") == 1 else None

                samples = await wait_until(reported_due, timeout=30, what="the due timer counted")
                late = _value(samples, "porting_timers_overdue_seconds", service="ledger")
                assert timedelta(days=1).total_seconds() <= late < timedelta(days=1, minutes=5).total_seconds()
        finally:
            await holder.close()

        async def fired() -> bool:
            _, samples = await _scrape(service)
            return (_value(samples, "porting_timers_fired_total", service="ledger", kind="reminder") or 0) >= 1 \
                and _value(samples, "porting_timers_due", service="ledger") == 0
        await wait_until(fired, timeout=30, what="the reminder fired once released, and the gauge back to 0")


async def test_the_timer_gauges_count_due_timers_and_how_late_the_oldest_is_and_leave_out_failed_ones(settings):
    clock = MovableClock()
    async with handler_harness(REMINDING_LEDGER, settings, clock) as harness:
        first, second = port_requested(), port_requested()
        await harness.handle(first)
        clock.advance(timedelta(hours=1))
        await harness.handle(second)
        await harness.timers.measure_due()
        assert (_gauge(TIMERS_DUE), _gauge(TIMERS_OVERDUE_SECONDS)) == (0, 0), "due tomorrow"

        clock.advance(timedelta(hours=25))  # the first is 2 h late, the second 1 h
        await harness.timers.measure_due()
        assert _gauge(TIMERS_DUE) == 2
        assert 7200 <= _gauge(TIMERS_OVERDUE_SECONDS) < 7200 + 60

        # The first one's handler fails for good: set aside, it is no longer due.
        await harness.pool.execute("UPDATE timers SET data = '{}' WHERE key = $1", first.port_in_request_sid)
        assert await harness.fire_due_timers() == 2
        await harness.timers.measure_due()
        assert (_gauge(TIMERS_DUE), _gauge(TIMERS_OVERDUE_SECONDS)) == (0, 0)


def _gauge(gauge: Any) -> float:
    return gauge.labels("ledger")._value.get()  # noqa: SLF001


# -- log lines about one event or timer ----------------------------------------------------------

BREAKS_A_RULE = "Rule Breaker"
CRASHES = "Crash Test"


async def _talkative_one(event: CloudEvent[PortRequested], unit: Any) -> None:
    """A one-event handler: logs, and fails for the events the tests make fail."""
    log.info("checking the request")
    name = event.data.losing_carrier_information.customer_name
    if name == BREAKS_A_RULE:
        raise EventRejected("the customer name breaks a rule")
    if name == CRASHES:
        raise RuntimeError("a bug in the handler")


async def _talkative_batch(events: Sequence[CloudEvent[PortRequested]], unit: Any) -> None:
    """A set-based handler: one line about the batch, one line about each event in its context."""
    log.info("checking a batch", size=len(events))
    for event in events:
        with event_context(event):
            log.info("checked")
            if event.data.losing_carrier_information.customer_name == CRASHES:
                raise RuntimeError("a bug in the handler")


def _talkative(batch: bool) -> ServiceDefinition:
    return ServiceDefinition(
        name="ledger", migrations=LEDGER.migrations, publishes=LEDGER.publishes,
        routes=lambda pool, settings: [Route(PortRequested, _talkative_batch if batch else _talkative_one, batch=batch)],
        timers=lambda pool, settings: [TimerRoute("reminder", remind)],
    )


def _named(name: str) -> PortRequested:
    return port_requested(losing_carrier_information={
        **port_requested_payload()["losing_carrier_information"], "customer_name": name})


def _lines(logs: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [line for line in logs if line["event"] == event]


def _captured() -> Any:
    # The context the runtime binds reaches the captured lines as it reaches the JSON ones.
    return structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars])


async def test_a_one_event_handlers_lines_carry_its_event_and_the_service_name_outlives_them(settings):
    async with handler_harness(_talkative(batch=False), settings) as harness:
        good, rejected = port_requested(), _named(BREAKS_A_RULE)
        broken = KafkaRecord(settings.topic(PortRequested.event_type), b"k", b"{not json",
                             [("ce_id", b"broken-1"), ("ce_subject", b"KWclaimed"), ("traceparent", TRACEPARENT.encode())])
        with _captured() as logs, log_context(service="ledger"):
            await harness.handle(harness.record(good, traceparent=TRACEPARENT), harness.record(rejected),
                                 as_consumer_record(broken))
        checking = _lines(logs, "checking the request")
        assert [line["port_in_request_sid"] for line in checking][:2] == [good.port_in_request_sid,
                                                                          rejected.port_in_request_sid]
        assert checking[0]["trace_id"] == TRACE_ID and checking[0]["event_type"] == PortRequested.event_type
        assert all(line["service"] == "ledger" for line in logs), "the handler's context never wipes the service"
        dead = {line.get("event_id"): line for line in _lines(logs, "dead-lettered")}
        assert dead["broken-1"]["port_in_request_sid"] == "KWclaimed" and dead["broken-1"]["trace_id"] == TRACE_ID
        [rejected_line] = [line for line in dead.values() if line.get("port_in_request_sid") == rejected.port_in_request_sid]
        assert rejected_line["error"] == "the customer name breaks a rule" and rejected_line["trace_id"]


async def test_an_event_that_fails_alone_is_logged_with_its_own_sid_and_trace_id(settings):
    async with handler_harness(_talkative(batch=True), settings) as harness:
        good, crashing = port_requested(), _named(CRASHES)
        with _captured() as logs:
            await harness.handle(harness.record(good), harness.record(crashing, traceparent=TRACEPARENT))
        [failed] = _lines(logs, "event failed alone; dead-lettering it")
        assert failed["port_in_request_sid"] == crashing.port_in_request_sid and failed["trace_id"] == TRACE_ID
        assert failed["exc_info"] is True, "logged with its traceback"
        checked = _lines(logs, "checked")
        assert {line["port_in_request_sid"] for line in checked} == {good.port_in_request_sid,
                                                                     crashing.port_in_request_sid}
        batch_lines = _lines(logs, "checking a batch")
        assert batch_lines and not any("port_in_request_sid" in line for line in batch_lines[:1]), \
            "a line about the whole batch names no single request"
        assert not [line for line in logs if line["event"] == "checked" and "event_id" not in line]


async def test_a_timer_that_fails_alone_is_logged_with_its_key_and_the_trace_of_the_event_that_scheduled_it(settings):
    clock = MovableClock()
    async with handler_harness(REMINDING_LEDGER, settings, clock) as harness:
        first, second = port_requested(), port_requested()
        await harness.handle(harness.record(first, traceparent=TRACEPARENT), harness.record(second))
        await harness.pool.execute("UPDATE timers SET data = '{}' WHERE key = $1", first.port_in_request_sid)
        clock.advance(timedelta(days=2))
        with _captured() as logs:
            assert await harness.fire_due_timers() == 2
        [failed] = _lines(logs, "timer failed for good; set aside")
        assert (failed["timer_kind"], failed["timer_key"]) == ("reminder", first.port_in_request_sid)
        assert failed["trace_id"] == TRACE_ID
