"""Event handlers, set-based: check every port request of a batch at once; keep the inventory in
step with the workflow's status changes."""

from __future__ import annotations

from collections.abc import Sequence

from porting_runtime import UnitOfWork
from porting_runtime.failures import FollowUpRefused
from schemas import CloudEvent, PortabilityChecked, PortRequested, PortStatusChanged

from ..adapters.coverage_file import CoverageFile
from ..adapters.repository import PortabilityRepository, RecordedCheck, checks_written
from ..domain.inventory import plan_inventory
from ..domain.portability import ProvidedDetails
from .checks import CheckRequest, check_requests


# What a request provides for a number: its PIN or not, the request's account number or not, and always
# an address. Four possible answers, made once instead of once per number.
_PROVIDED = {(pin, account_number): ProvidedDetails(pin=pin, account_number=account_number, address=True)
             for pin in (False, True) for account_number in (False, True)}


def _check_request(request: PortRequested) -> CheckRequest:
    account_number = bool(request.losing_carrier_information.account_number)
    numbers = [(n.phone_number, _PROVIDED[bool(n.pin), account_number]) for n in request.phone_numbers]
    return CheckRequest(numbers, request.account_sid, port_in_request_sid=request.port_in_request_sid)


class PortRequestChecker:
    """One query for holdings, hierarchy and number blocks of the whole batch, the rules per
    number, one insert for every check, one PortabilityChecked per request."""

    def __init__(self, coverage_file: CoverageFile) -> None:
        self.coverage_file = coverage_file

    async def __call__(self, events: Sequence[CloudEvent[PortRequested]], unit: UnitOfWork) -> None:
        repository = PortabilityRepository(unit.connection)
        answers = await check_requests(repository, self.coverage_file, [_check_request(e.data) for e in events])
        checked_at = unit.now()
        kept: list[RecordedCheck] = []
        for event, results in zip(events, answers, strict=True):
            request = event.data
            try:
                unit.publish(PortabilityChecked(
                    port_in_request_sid=request.port_in_request_sid, account_sid=request.account_sid,
                    revision=request.revision, results=results, checked_at=checked_at,
                ), cause=event)
            except FollowUpRefused as refusal:  # e.g. larger than the broker takes: that request alone fails
                unit.reject(event, str(refusal))
                continue
            kept += [RecordedCheck(r, request.account_sid, event.attributes.id, request.port_in_request_sid)
                     for r in results]
        unit.write(checks_written(kept))  # with the PortabilityChecked follow-ups, in one statement


async def follow_port_status(events: Sequence[CloudEvent[PortStatusChanged]], unit: UnitOfWork) -> None:
    """The inventory follows the batch's status changes, one statement per kind of change (see plan_inventory)."""
    plan = plan_inventory(e.data for e in events)
    repository = PortabilityRepository(unit.connection)
    await repository.hold_each(list(plan.holdings.items()))
    for step in plan.steps:
        await repository.release_each(step.releases)
        await repository.reserve_each([(n, account, request) for n, (account, request) in step.reservations.items()])
