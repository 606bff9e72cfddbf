"""How the workflow's status changes move numbers in the inventory, planned for a whole batch.

A number is reserved for its target account while its port is under way, released when it
cannot or will not port (or its request ends), and held by that account once completed.

The plan is applied as: every holding in one statement, then each step's releases and its
reservations, one statement each. That equals applying the changes one by one, in order:
- a holding overwrites whatever was there, and no reservation or release touches a held
  number (a release matches its request's reservations; a reservation skips a taken number),
  so holdings go first, the last one of a number winning;
- releases commute with each other, and so do reservations of different numbers (of one
  number, the first wins);
- a release can undo, or make room for, a reservation made before it: such a release starts
  a new step, so it runs after that reservation. A release of a whole request may touch any
  of its numbers, so it starts a new step after any reservation.
A batch where no number comes back is one step: three statements.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas import NumberStatus, PortStatusChanged, RequestStatus

from .numbers import normalised_e164

UNDER_WAY = frozenset({NumberStatus.IN_REVIEW, NumberStatus.PORT_SUBMITTED, NumberStatus.PORT_PENDING,
                       NumberStatus.SCHEDULED, NumberStatus.CANCELING})
RELEASED = frozenset({NumberStatus.NOT_PORTABLE, NumberStatus.PORT_REJECTED, NumberStatus.CANCELED})
ENDED_REQUEST = frozenset({RequestStatus.CANCELED, RequestStatus.EXPIRED, RequestStatus.REJECTED})


@dataclass
class Step:
    # (number, request): the request's reservation of the number; None for all of its numbers.
    releases: list[tuple[str | None, str]] = field(default_factory=list)
    # number -> (account, request)
    reservations: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass
class InventoryPlan:
    holdings: dict[str, str] = field(default_factory=dict)  # number -> account
    steps: list[Step] = field(default_factory=lambda: [Step()])

    def release(self, number: str | None, request: str) -> None:
        current = self.steps[-1]
        if current.reservations and (number is None or number in current.reservations):
            current = Step()
            self.steps.append(current)
        current.releases.append((number, request))

    def reserve(self, number: str, account: str, request: str) -> None:
        self.steps[-1].reservations.setdefault(number, (account, request))


def plan_inventory(changes: Iterable[PortStatusChanged]) -> InventoryPlan:
    """The inventory changes of these status changes, in their order. A number that is not strict
    E.164 was never checked nor reserved, and is skipped; the others by their normalised spelling."""
    plan = InventoryPlan()
    for change in changes:
        numbers = [(e164, n.status_to) for n in change.phone_numbers if (e164 := normalised_e164(n.phone_number))]
        request = change.port_in_request_sid
        for number, status in numbers:
            if status is NumberStatus.COMPLETED:
                plan.holdings[number] = change.account_sid  # the last holding of a number wins
        for number, status in numbers:
            if status in UNDER_WAY:
                plan.reserve(number, change.account_sid, request)
        for number, status in numbers:
            if status in RELEASED:
                plan.release(number, request)
        if change.status_to in ENDED_REQUEST:
            plan.release(None, request)
    return plan
