"""Which failures can pass (retry, hold the partition) and which never will (dead-letter)."""

from __future__ import annotations

import asyncio
import random

import asyncpg
from aiokafka.errors import KafkaError

_TRANSIENT = (
    OSError,  # includes ConnectionError: the database or broker is unreachable
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.OperatorInterventionError,  # admin shutdown, crash shutdown
    asyncpg.InsufficientResourcesError,
    KafkaError,  # the broker away, a leader moving, a topic not yet known: all pass with time
)


def is_transient(error: BaseException) -> bool:
    return isinstance(error, _TRANSIENT)


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
