"""The inventory plan of a batch of status changes does what applying them one by one would do."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from portability.domain.inventory import ENDED_REQUEST, RELEASED, UNDER_WAY, InventoryPlan, plan_inventory
from schemas import NumberStatus, PortStatusChanged, RequestStatus

NUMBERS = ["+12015550101", "+12015550102", "+12015550103"]
REQUESTS = ["KW" + c * 32 for c in "abc"]
ACCOUNTS = {request: "AC" + c * 32 for request, c in zip(REQUESTS, "123", strict=True)}
Inventory = dict[str, tuple[str, str | None]]  # number -> (account, reserving request or None when held)


def change(request: str, numbers: dict[str, NumberStatus], request_status: RequestStatus = RequestStatus.IN_PROGRESS
           ) -> PortStatusChanged:
    return PortStatusChanged(
        port_in_request_sid=request, account_sid=ACCOUNTS[request], status_from=None, status_to=request_status,
        phone_numbers=[{"phone_number": n, "status_from": None, "status_to": s} for n, s in numbers.items()],
        changed_at=datetime(2027, 1, 4, tzinfo=UTC),
    )


# The statements' meaning, on a dictionary: what the repository's SQL does to the inventory table.
def hold(inventory: Inventory, number: str, account: str) -> None:
    inventory[number] = (account, None)


def reserve(inventory: Inventory, number: str, account: str, request: str) -> None:
    inventory.setdefault(number, (account, request))


def release(inventory: Inventory, number: str | None, request: str) -> None:
    for held in [n for n, (_, r) in inventory.items() if r == request and number in (None, n)]:
        del inventory[held]


def one_by_one(inventory: Inventory, changes: list[PortStatusChanged]) -> Inventory:
    """The reference: each change alone, as the one-event handler applied it."""
    inventory = dict(inventory)
    for c in changes:
        account, request = c.account_sid, c.port_in_request_sid
        for n in c.phone_numbers:
            if n.status_to is NumberStatus.COMPLETED:
                hold(inventory, n.phone_number, account)
        for n in c.phone_numbers:
            if n.status_to in UNDER_WAY:
                reserve(inventory, n.phone_number, account, request)
        for n in c.phone_numbers:
            if n.status_to in RELEASED:
                release(inventory, n.phone_number, request)
        if c.status_to in ENDED_REQUEST:
            release(inventory, None, request)
    return inventory


def as_planned(inventory: Inventory, plan: InventoryPlan) -> Inventory:
    """The plan, statement by statement, as the set-based handler applies it."""
    inventory = dict(inventory)
    for number, account in plan.holdings.items():
        hold(inventory, number, account)
    for step in plan.steps:
        for number, request in step.releases:
            release(inventory, number, request)
        for number, (account, request) in step.reservations.items():
            reserve(inventory, number, account, request)
    return inventory


def test_a_batch_where_no_number_comes_back_is_three_statements():
    plan = plan_inventory([change(REQUESTS[0], {NUMBERS[0]: NumberStatus.IN_REVIEW}),
                           change(REQUESTS[1], {NUMBERS[1]: NumberStatus.CANCELED}),
                           change(REQUESTS[2], {NUMBERS[2]: NumberStatus.COMPLETED})])
    assert len(plan.steps) == 1
    assert plan.holdings == {NUMBERS[2]: ACCOUNTS[REQUESTS[2]]}


def test_a_release_after_a_reservation_of_its_number_waits_for_it():
    reserved_then_released = [change(REQUESTS[0], {NUMBERS[0]: NumberStatus.IN_REVIEW}),
                              change(REQUESTS[0], {NUMBERS[0]: NumberStatus.CANCELED})]
    plan = plan_inventory(reserved_then_released)
    assert len(plan.steps) == 2
    assert as_planned({}, plan) == one_by_one({}, reserved_then_released) == {}


def test_a_request_that_ends_frees_its_numbers_for_a_later_reservation_in_the_same_batch():
    inventory = {NUMBERS[0]: (ACCOUNTS[REQUESTS[0]], REQUESTS[0])}
    changes = [change(REQUESTS[1], {NUMBERS[0]: NumberStatus.IN_REVIEW}),  # taken: no effect
               change(REQUESTS[0], {}, RequestStatus.CANCELED),
               change(REQUESTS[2], {NUMBERS[0]: NumberStatus.IN_REVIEW})]
    assert as_planned(inventory, plan_inventory(changes)) == one_by_one(inventory, changes) == \
        {NUMBERS[0]: (ACCOUNTS[REQUESTS[2]], REQUESTS[2])}


def test_look_alike_numbers_are_left_out_of_the_plan():
    plan = plan_inventory([change(REQUESTS[0], {"+1２015550101": NumberStatus.IN_REVIEW,
                                                NUMBERS[0] + "\n": NumberStatus.COMPLETED})])
    assert plan.holdings == {} and plan.steps[0].reservations == {}


STATUSES = [*NumberStatus]
REQUEST_STATUSES = [*RequestStatus]


@pytest.mark.parametrize("seed", range(40))
def test_any_batch_planned_leaves_the_inventory_as_applying_its_changes_one_by_one(seed):
    rng = random.Random(seed)
    for _ in range(100):
        inventory: Inventory = {}
        for number in NUMBERS:
            if rng.random() < 0.5:
                request = rng.choice(REQUESTS)
                inventory[number] = (ACCOUNTS[request], rng.choice([request, None]))
        changes = [change(request := rng.choice(REQUESTS),
                          {n: rng.choice(STATUSES) for n in rng.sample(NUMBERS, rng.randint(0, len(NUMBERS)))},
                          rng.choice(REQUEST_STATUSES))
                   for _ in range(rng.randint(1, 8))]
        assert as_planned(inventory, plan_inventory(changes)) == one_by_one(inventory, changes), changes
