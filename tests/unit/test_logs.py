"""Every log line is one JSON object, from structlog and from libraries alike, and the lines about
one event or timer carry its request sid and trace id."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import structlog

from porting_runtime.logs import configure_logging, event_context, log_context, record_fields, timer_context
from porting_runtime.timers import DueTimer
from schemas import PortRequested, decode, encode

from ..factories import port_requested

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """configure_logging as a service runs it, writing to a stream in place of stderr; everything
    it changes (structlog, the root logger, the bound context) is put back afterwards."""
    saved_config = structlog.get_config()
    root, aiokafka = logging.getLogger(), logging.getLogger("aiokafka")
    saved_logging = (root.handlers[:], root.level, aiokafka.level)
    saved_context = structlog.contextvars.get_contextvars()
    stream = io.StringIO()
    configure_logging("ledger", "DEBUG", stream=stream)
    try:
        yield stream
    finally:
        structlog.configure(**saved_config)
        root.handlers[:], root.level = saved_logging[0], saved_logging[1]
        aiokafka.setLevel(saved_logging[2])
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(**saved_context)


def _lines(stream: io.StringIO) -> list[dict]:
    text, _ = stream.getvalue(), stream.truncate(0)
    stream.seek(0)
    return [json.loads(line) for line in text.splitlines()]  # raises on any line that is not JSON


def _event(**options):
    request = port_requested()
    record = encode(request, source="tests", topic=PortRequested.event_type, traceparent=TRACEPARENT, **options)
    return request, decode(record.headers, record.value, expected_type=PortRequested.event_type)


def test_a_structlog_line_is_one_json_object_with_the_service_level_and_time(json_logs):
    structlog.get_logger("tests.logs").info("started", port=8080)
    [line] = _lines(json_logs)
    assert line["event"] == "started" and line["port"] == 8080
    assert line["service"] == "ledger" and line["level"] == "info"
    assert datetime.fromisoformat(line["timestamp"]).tzinfo is not None


def test_a_librarys_standard_logging_line_is_json_too_with_its_logger_name_and_the_bound_event(json_logs):
    request, event = _event()
    with event_context(event):
        logging.getLogger("aiokafka.conn").warning("connection to %s lost", "kafka:9092")
        # A library logger no other test configures (uvicorn's own are set by the servers tests start).
        logging.getLogger("some.library").info("a library's info line")
    first, second = _lines(json_logs)
    assert first["event"] == "connection to kafka:9092 lost" and first["logger"] == "aiokafka.conn"
    assert first["level"] == "warning" and first["service"] == "ledger"
    assert first["port_in_request_sid"] == request.port_in_request_sid and first["trace_id"] == TRACE_ID
    assert second["logger"] == "some.library" and second["event_id"] == event.attributes.id


def test_an_exception_line_holds_the_traceback_text_in_its_json(json_logs):
    try:
        raise ValueError("the cause")
    except ValueError:
        structlog.get_logger("tests.logs").exception("handler failed")
        logging.getLogger("some.library").exception("library failed")
    ours, library = _lines(json_logs)
    assert "ValueError: the cause" in ours["exception"] and "Traceback" in ours["exception"]
    assert "ValueError: the cause" in library["exception"]


def test_lines_below_the_configured_level_are_dropped(json_logs):
    configure_logging("ledger", "WARNING", stream=json_logs)
    structlog.get_logger("tests.logs").info("quiet")
    logging.getLogger("some.library").info("quiet too")
    structlog.get_logger("tests.logs").warning("loud")
    assert [line["event"] for line in _lines(json_logs)] == ["loud"]


def test_every_line_inside_an_event_context_carries_the_request_sid_event_and_trace_id(json_logs):
    request, event = _event()
    log = structlog.get_logger("tests.logs")
    with event_context(event):
        log.info("checked")
    log.info("after")
    inside, after = _lines(json_logs)
    assert inside["port_in_request_sid"] == request.port_in_request_sid
    assert inside["event_id"] == event.attributes.id and inside["event_type"] == PortRequested.event_type
    assert inside["trace_id"] == TRACE_ID
    assert after["service"] == "ledger", "the service name outlives the event's context"
    assert not {"port_in_request_sid", "event_id", "event_type", "trace_id"} & set(after)


def test_a_nested_context_restores_the_outer_one_instead_of_clearing_it(json_logs):
    (first_request, first), (second_request, second) = _event(), _event()
    log = structlog.get_logger("tests.logs")
    with event_context(first):
        with event_context(second, batch_size=2):
            log.info("inner")
        log.info("outer")
    inner, outer = _lines(json_logs)
    assert inner["port_in_request_sid"] == second_request.port_in_request_sid and inner["batch_size"] == 2
    assert outer["port_in_request_sid"] == first_request.port_in_request_sid and "batch_size" not in outer


def test_a_context_is_restored_when_the_block_raises(json_logs):
    _, event = _event()
    with pytest.raises(RuntimeError), event_context(event):
        raise RuntimeError("handler failed")
    structlog.get_logger("tests.logs").info("after")
    [line] = _lines(json_logs)
    assert "event_id" not in line and line["service"] == "ledger"


async def test_concurrent_handlers_each_log_their_own_event(json_logs):
    events = [_event() for _ in range(3)]
    log = structlog.get_logger("tests.logs")

    async def handle(request, event):
        with event_context(event):
            await asyncio.sleep(0)  # let the others bind theirs in between
            log.info("handled", expected=request.port_in_request_sid)

    await asyncio.gather(*(handle(request, event) for request, event in events))
    lines = [line for line in _lines(json_logs) if line["event"] == "handled"]
    assert len(lines) == 3
    assert all(line["port_in_request_sid"] == line["expected"] for line in lines)


def test_a_timer_context_carries_its_kind_key_and_the_trace_of_the_event_that_scheduled_it(json_logs):
    timer = DueTimer(id=1, kind="carrier_sla", key="KW" + "0" * 32 + ":2", due_at=datetime.now(UTC), data={},
                     traceparent=TRACEPARENT)
    with timer_context(timer):
        structlog.get_logger("tests.logs").error("timer failed for good; set aside")
    [line] = _lines(json_logs)
    assert (line["timer_kind"], line["timer_key"], line["trace_id"]) == ("carrier_sla", timer.key, TRACE_ID)


def test_a_timer_without_a_trace_logs_no_trace_id_value(json_logs):
    timer = DueTimer(id=1, kind="reminder", key="k", due_at=datetime.now(UTC), data={}, traceparent=None)
    with timer_context(timer), log_context(attempt=1):
        structlog.get_logger("tests.logs").info("firing")
    [line] = _lines(json_logs)
    assert line["trace_id"] is None and line["attempt"] == 1


def test_a_records_headers_give_the_sid_event_id_type_and_trace_id_for_a_dead_letter_line():
    request = port_requested()
    record = encode(request, source="tests", topic=PortRequested.event_type, traceparent=TRACEPARENT)
    fields = record_fields(record.headers)
    assert fields["port_in_request_sid"] == request.port_in_request_sid
    assert fields["event_type"] == PortRequested.event_type and fields["trace_id"] == TRACE_ID
    assert fields["event_id"] == dict(record.headers)["ce_id"].decode()


def test_hostile_headers_give_bounded_safe_text_and_no_trace_id_from_a_malformed_traceparent():
    headers = [(b"ce_subject", b"\xff\x00\x1b[31m" + b"A" * 10_000), (b"ce_id", None),
               ("traceparent", b"00-not-a-trace"), (b"ce_type", b"porting.port-requested.v1")]
    fields = record_fields(headers)
    assert "\x00" not in fields["port_in_request_sid"] and "\x1b" not in fields["port_in_request_sid"]
    assert len(fields["port_in_request_sid"]) < 400
    assert "event_id" not in fields and "trace_id" not in fields
    assert fields["event_type"] == "porting.port-requested.v1"
    assert record_fields(None) == {} and record_fields([(b"ce_id", 5)]) == {}
