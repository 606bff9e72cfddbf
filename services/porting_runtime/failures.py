"""Failures classified by cause, not by library.

- transient: the database or broker is away, a serialisation conflict, a leader moving.
  It passes with time: hold the partition (or the relay, or the timers) and retry.
- record: the failure belongs to one record or one follow-up (bad data, a constraint, a
  program limit, a message the broker can never accept). Retrying cannot help: dead-letter
  that record (or set that outbox row aside) and go on.
- unknown: anything else. Retried a bounded number of times, then narrowed down to the
  record that causes it.
"""

from __future__ import annotations

import asyncio
import random
from typing import Literal

import asyncpg
from aiokafka import errors as kafka_errors
from pydantic import ValidationError

from schemas import ContractViolation

FailureKind = Literal["transient", "record", "unknown"]


class EventRejected(Exception):
    """A rule the event's data breaks: it can never succeed, so it is dead-lettered with this reason."""


class FollowUpRefused(Exception):
    """A follow-up the broker would never accept (too large), or that the service did not declare."""


_TRANSIENT = (
    OSError,  # includes ConnectionError: the database or broker is unreachable
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.LockNotAvailableError,
    asyncpg.QueryCanceledError,  # statement timeout under load
    asyncpg.OperatorInterventionError,  # admin shutdown, crash shutdown
    asyncpg.InsufficientResourcesError,  # disk full, out of memory: an operator fixes it
    asyncpg.exceptions.TargetServerAttributeNotMatched,  # a server of the wrong role during a failover
    # A connection's prepared statements outlived a migration that changed a table's or type's
    # shape (a rolling deploy): asyncpg drops the connection's statement cache as it raises, and
    # re-prepares on the retry. Inside a transaction it cannot retry itself.
    asyncpg.exceptions.InvalidCachedStatementError,
    asyncpg.exceptions.OutdatedSchemaCacheError,
    # Class 42 (a table missing, a privilege revoked) and a missing database or schema: a fault
    # of the deployment that every event would hit. Hold and let an operator fix it; dead-lettering
    # would throw every event away.
    asyncpg.SyntaxOrAccessError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidSchemaNameError,
)

# Errors of one record or one produced message: the broker will refuse it however often it is sent.
_RECORD_KAFKA = (
    kafka_errors.MessageSizeTooLargeError,
    kafka_errors.RecordTooLargeError,
    kafka_errors.InvalidTopicError,
    kafka_errors.CorruptRecordException,
    kafka_errors.UnsupportedCodecError,
)

_RECORD = (
    EventRejected,
    FollowUpRefused,
    ContractViolation,
    ValidationError,
    UnicodeError,
    asyncpg.DataError,  # class 22: a value Postgres refuses (NUL, out of range, bad encoding)
    asyncpg.IntegrityConstraintViolationError,  # class 23
    asyncpg.ProgramLimitExceededError,  # class 54: index row too large, too many columns
    *_RECORD_KAFKA,
)


def _connection_lost_track(error: BaseException) -> bool:
    """asyncpg's protocol stuck mid-operation on a connection whose session was ended under it:
    "cannot switch to state N; another operation (M) is in progress" (MagicStack/asyncpg#1069),
    with no cause attached; 10-15 in ~1,200 transactions under a burst of pg_terminate_backend
    here, and the pool replaces the connection. asyncpg raises InternalClientError for its own
    bugs and misconfigurations too, which stay unknown: only this text marks a lost connection."""
    return type(error) is asyncpg.InternalClientError and str(error).startswith("cannot switch to state")


def classify(error: BaseException) -> FailureKind:
    if isinstance(error, _RECORD):
        return "record"
    if isinstance(error, _TRANSIENT) or isinstance(error, kafka_errors.KafkaError) or _connection_lost_track(error):
        # Every other broker error (leader moving, broker away, topic not yet known) passes with time.
        return "transient"
    return "unknown"


def is_transient(error: BaseException) -> bool:
    return classify(error) == "transient"


def describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Backoff:
    """Exponential backoff with jitter, capped; reset after a success."""

    def __init__(self, initial: float = 0.1, maximum: float = 10.0) -> None:
        self.initial, self.maximum, self.attempt = initial, maximum, 0

    def next_delay(self) -> float:
        delay = min(self.maximum, self.initial * (2**self.attempt))
        self.attempt += 1
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.attempt = 0
