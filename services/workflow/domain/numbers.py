"""One number's place in its port, and the request status derived from all of them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum

from pydantic import BaseModel, ConfigDict

from schemas import NumberStatus, PortingRequirements, RequestStatus

# Still on its way: the request is not over while a number is here.
ACTIVE = frozenset({NumberStatus.IN_REVIEW, NumberStatus.PORT_SUBMITTED, NumberStatus.PORT_PENDING,
                    NumberStatus.SCHEDULED, NumberStatus.CANCELING})
# Numbers the losing carrier holds an order for: cancellable until a date is scheduled.
WITH_CARRIER = frozenset({NumberStatus.PORT_SUBMITTED, NumberStatus.PORT_PENDING})
ENDED_REQUEST = frozenset({RequestStatus.COMPLETED, RequestStatus.CANCELED, RequestStatus.REJECTED,
                           RequestStatus.EXPIRED})


class RejectedBy(str, Enum):
    REVIEW = "review"
    CARRIER = "carrier"


class NumberState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone_number: str
    status: NumberStatus = NumberStatus.IN_REVIEW
    reason_code: str | None = None
    reason: str | None = None
    # From the portability check of the current revision.
    checked_revision: int | None = None
    country: str | None = None
    pin_and_account_number_required: bool = False
    requirements: PortingRequirements | None = None
    # A port_rejected number waits for a corrected revision until it expires.
    rejected_by: RejectedBy | None = None
    awaiting_fix: bool = False
    expired: bool = False
    submitted_revision: int | None = None
    losing_carrier: str | None = None
    proposed_port_date: date | None = None
    port_date: date | None = None
    port_time_range_start: time | None = None
    port_time_range_end: time | None = None
    time_zone: str | None = None
    completed_at: datetime | None = None
    fee_per_number: Decimal | None = None
    fee_currency: str | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def final(self) -> bool:
        return not self.active and not self.awaiting_fix


def derive_request_status(numbers: Iterable[NumberState]) -> RequestStatus:
    """The request's status, from its numbers alone; first match wins:

    1. action_required: a number waits for a fix and the request has been with a carrier
       (a rejection before anything was submitted is the review's `rejected`);
    2. in_review: every number still on its way is in review and none has completed;
    3. in_progress: any other number still on its way;
    then, with every number at an end:
    4. completed: some number ported (partial outcomes are normal);
    5. expired: a number's fix never came (30 days after action_required);
    6. canceled: some number was canceled;
    7. rejected: nothing passed (review failures, not portable).
    """
    numbers = list(numbers)
    active = [n for n in numbers if n.active]
    waiting = any(n.awaiting_fix for n in numbers)
    submitted = any(n.submitted_revision is not None for n in numbers)
    completed = any(n.status is NumberStatus.COMPLETED for n in numbers)
    if waiting and submitted:
        return RequestStatus.ACTION_REQUIRED
    if active:
        if all(n.status is NumberStatus.IN_REVIEW for n in active) and not completed:
            return RequestStatus.IN_REVIEW
        return RequestStatus.IN_PROGRESS
    if waiting:
        return RequestStatus.REJECTED
    if completed:
        return RequestStatus.COMPLETED
    if any(n.expired for n in numbers):
        return RequestStatus.EXPIRED
    if any(n.status is NumberStatus.CANCELED for n in numbers):
        return RequestStatus.CANCELED
    return RequestStatus.REJECTED
