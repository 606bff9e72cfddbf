"""What came of one delivery attempt, and when to try again.

Webhooks: 2xx delivered; 4xx other than 408 and 429 is final (the receiver refuses this
message and will keep refusing it); 5xx, 408, 429, other statuses, a timeout or a connection
error are retried. E-mail: a permanent (5xx) refusal of the recipient or the message is final;
anything else (connection refused, timeout, 4xx, authentication) is retried, because it is the
kind of trouble an operator or time fixes.

Retries back off exponentially up to a ceiling, each delivery spread by a fixed fraction taken
from its own id (so many deliveries failing together do not retry in lockstep, and a delivery's
schedule is reproducible), and stop at the give-up time measured from when it was recorded.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from schemas.types import without_control_characters

DETAIL_MAX = 500


class Outcome(str, Enum):
    DELIVERED = "delivered"
    RETRYABLE = "retryable"
    FAILED = "failed"  # final: never tried again


@dataclass(frozen=True)
class AttemptResult:
    outcome: Outcome
    detail: str
    status_code: int | None = None
    # The receiver's Retry-After, in seconds, when it gave one.
    retry_after: float | None = None

    def __post_init__(self) -> None:
        # The detail quotes the receiver (an SMTP reply passes every byte but line breaks): a NUL
        # failed the attempt's INSERT, any control character the PortAlertRaised that quotes it,
        # and either crashed the outcome recorder into resending the whole batch.
        object.__setattr__(self, "detail", without_control_characters(self.detail)[:DETAIL_MAX])


def classify_http_status(status_code: int) -> Outcome:
    if 200 <= status_code < 300:
        return Outcome.DELIVERED
    if 400 <= status_code < 500 and status_code not in (408, 429):
        return Outcome.FAILED
    return Outcome.RETRYABLE


def classify_smtp_reply(code: int) -> Outcome:
    """A reply code that refused a recipient or the message: 5xx is permanent (RFC 5321 4.2.1)."""
    return Outcome.FAILED if 500 <= code < 600 else Outcome.RETRYABLE


@dataclass(frozen=True)
class RetryPolicy:
    first_delay: timedelta = timedelta(seconds=30)
    multiplier: float = 2.0
    max_delay: timedelta = timedelta(hours=1)
    give_up_after: timedelta = timedelta(hours=24)
    # Each delivery's delays are stretched by up to this fraction, fixed per delivery id.
    spread: float = 0.2

    def delay(self, delivery_id: str, attempts_made: int) -> timedelta:
        base = min(self.max_delay.total_seconds(),
                   self.first_delay.total_seconds() * self.multiplier ** max(attempts_made - 1, 0))
        fraction = int.from_bytes(hashlib.sha256(delivery_id.encode()).digest()[:2], "big") / 65535
        return timedelta(seconds=base * (1 + self.spread * fraction))

    def deadline(self, recorded_at: datetime) -> datetime:
        return recorded_at + self.give_up_after

    def next_attempt(self, delivery_id: str, *, attempts_made: int, recorded_at: datetime, now: datetime,
                     retry_after: float | None = None) -> datetime | None:
        """When to try again after a retryable failure; None when the give-up time has come.
        The last try falls on the give-up time itself, so a receiver back by then still gets it."""
        deadline = self.deadline(recorded_at)
        if now >= deadline:
            return None
        wait = self.delay(delivery_id, attempts_made)
        if retry_after is not None:
            wait = max(wait, timedelta(seconds=min(retry_after, self.max_delay.total_seconds())))
        return min(now + wait, deadline)
