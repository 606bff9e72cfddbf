"""Structured JSON logs carrying the request sid and trace id of the event being handled.

Every line is one JSON object on stderr, whether it comes from structlog or from a library
logging through the standard library. Lines logged inside `event_context(event)` (or
`timer_context(timer)`) carry that event's `port_in_request_sid`, `event_id`, `event_type` and
`trace_id` (or the timer's `timer_kind`, `timer_key` and `trace_id`), whoever logs them: the
runtime, a handler, a library.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

import structlog

from schemas.tracing import trace_id_of

from .record_text import name_bytes, safe_bytes_text

bind_event_context = structlog.contextvars.bind_contextvars
clear_event_context = structlog.contextvars.clear_contextvars

# Header values taken from a record that may be hostile are cut to this in a log line.
HEADER_TEXT_LIMIT = 256


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Bind `fields` to every log line inside the block, then restore what was bound before
    (an outer binding of the same key comes back; the service name is never lost)."""
    tokens = structlog.contextvars.bind_contextvars(**fields)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def event_fields(event: Any) -> dict[str, Any]:
    """What identifies a CloudEvent in a log line: its request sid, id, type and trace id."""
    attributes = event.attributes
    return {"port_in_request_sid": event.data.subject, "event_id": attributes.id, "event_type": attributes.type,
            "trace_id": trace_id_of(attributes.traceparent)}


def event_context(event: Any, **fields: Any) -> contextlib.AbstractContextManager[None]:
    """Every line logged inside is about this event:

        for event in events:                      # a set-based handler
            with event_context(event):
                log.warning("refused", reason=...)  # carries the event's sid and trace id
    """
    return log_context(**event_fields(event), **fields)


def timer_context(timer: Any, **fields: Any) -> contextlib.AbstractContextManager[None]:
    """Every line logged inside is about this timer: its kind, key, and the trace of the event
    that scheduled it."""
    return log_context(timer_kind=timer.kind, timer_key=timer.key, trace_id=trace_id_of(timer.traceparent), **fields)


def record_fields(headers: Iterable[tuple[Any, bytes | None]] | None) -> dict[str, str]:
    """What a Kafka record's CloudEvents headers say it is, for a line about a record that may
    never have decoded (a dead letter): the values as the record claims them, made safe and
    bounded; the trace id only from a well-formed traceparent."""
    wanted = {b"ce_subject": "port_in_request_sid", b"ce_id": "event_id", b"ce_type": "event_type"}
    found: dict[str, str] = {}
    try:
        for name, value in headers or ():
            key = name_bytes(name)
            if value is None or not isinstance(value, bytes | bytearray):
                continue
            if key in wanted and wanted[key] not in found:
                found[wanted[key]] = safe_bytes_text(bytes(value), HEADER_TEXT_LIMIT)
            elif key == b"traceparent" and "trace_id" not in found and len(value) <= 64:
                trace_id = trace_id_of(bytes(value).decode("ascii", "replace"))
                if trace_id:
                    found["trace_id"] = trace_id
    except Exception:  # a log line never fails over what a hostile record carries
        pass
    return found


def configure_logging(service: str, level: str = "INFO", stream: TextIO | None = None) -> None:
    """One JSON object per line on `stream` (stderr), for structlog's lines and the standard library's."""
    stream = stream or sys.stderr
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    # Libraries log through the standard library; render them as JSON too.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # A library's exc_info is a (type, value, traceback) tuple: rendered as text here, or the
                # JSON line would hold "<traceback object>" and nothing of the cause.
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
