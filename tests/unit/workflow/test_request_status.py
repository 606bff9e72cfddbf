"""The request's status is derived from its numbers; partial outcomes are normal."""

from __future__ import annotations

import pytest

from schemas import NumberStatus as N
from schemas import RequestStatus as R
from workflow.domain.numbers import NumberState, RejectedBy, derive_request_status


def number(status: N, *, submitted: bool = False, awaiting_fix: bool = False, expired: bool = False,
           by: RejectedBy | None = None) -> NumberState:
    return NumberState(phone_number="+14155550100", status=status, submitted_revision=1 if submitted else None,
                       awaiting_fix=awaiting_fix, expired=expired, rejected_by=by)


REVIEW_REJECTED = number(N.PORT_REJECTED, awaiting_fix=True, by=RejectedBy.REVIEW)
CARRIER_REJECTED = number(N.PORT_REJECTED, submitted=True, awaiting_fix=True, by=RejectedBy.CARRIER)
EXPIRED = number(N.PORT_REJECTED, submitted=True, expired=True, by=RejectedBy.CARRIER)


@pytest.mark.parametrize(("numbers", "status"), [
    ([number(N.IN_REVIEW)], R.IN_REVIEW),
    ([number(N.IN_REVIEW), number(N.NOT_PORTABLE)], R.IN_REVIEW),
    ([number(N.PORT_SUBMITTED, submitted=True), number(N.NOT_PORTABLE)], R.IN_PROGRESS),
    ([number(N.PORT_PENDING, submitted=True), number(N.CANCELED)], R.IN_PROGRESS),
    ([number(N.SCHEDULED, submitted=True)], R.IN_PROGRESS),
    ([number(N.CANCELING, submitted=True)], R.IN_PROGRESS),
    ([number(N.IN_REVIEW), number(N.COMPLETED, submitted=True)], R.IN_PROGRESS),
    ([CARRIER_REJECTED, number(N.PORT_PENDING, submitted=True)], R.ACTION_REQUIRED),
    ([CARRIER_REJECTED], R.ACTION_REQUIRED),
    ([REVIEW_REJECTED, number(N.PORT_SUBMITTED, submitted=True)], R.ACTION_REQUIRED),
    ([REVIEW_REJECTED], R.REJECTED),
    ([REVIEW_REJECTED, number(N.NOT_PORTABLE)], R.REJECTED),
    ([number(N.NOT_PORTABLE)], R.REJECTED),
    ([REVIEW_REJECTED, number(N.IN_REVIEW)], R.IN_REVIEW),
    ([number(N.COMPLETED, submitted=True)], R.COMPLETED),
    ([number(N.COMPLETED, submitted=True), number(N.CANCELED), number(N.NOT_PORTABLE)], R.COMPLETED),
    ([number(N.COMPLETED, submitted=True), EXPIRED], R.COMPLETED),
    ([EXPIRED, number(N.CANCELED)], R.EXPIRED),
    ([number(N.CANCELED), number(N.NOT_PORTABLE)], R.CANCELED),
])
def test_the_request_status_follows_from_its_numbers(numbers, status):
    assert derive_request_status(numbers) is status
