"""Event handlers: check a port request's numbers; keep the inventory in step with the workflow."""

from __future__ import annotations

from datetime import UTC, datetime

from porting_runtime import UnitOfWork
from schemas import CloudEvent, NumberStatus, PortabilityChecked, PortRequested, PortStatusChanged, RequestStatus

from ..adapters.coverage_file import CoverageFile
from ..adapters.repository import PortabilityRepository
from ..domain.numbers import normalised_e164
from ..domain.portability import ProvidedDetails
from .checks import check_numbers

# A number is reserved for its target account while its port is under way ...
UNDER_WAY = {NumberStatus.IN_REVIEW, NumberStatus.PORT_SUBMITTED, NumberStatus.PORT_PENDING,
             NumberStatus.SCHEDULED, NumberStatus.CANCELING}
# ... released when it cannot or will not port ...
RELEASED = {NumberStatus.NOT_PORTABLE, NumberStatus.PORT_REJECTED, NumberStatus.CANCELED}
ENDED_REQUEST = {RequestStatus.CANCELED, RequestStatus.EXPIRED, RequestStatus.REJECTED}
# ... and held by that account once completed.


class PortRequestChecker:
    def __init__(self, coverage_file: CoverageFile) -> None:
        self.coverage_file = coverage_file

    async def __call__(self, event: CloudEvent[PortRequested], unit: UnitOfWork) -> None:
        request = event.data
        carrier = request.losing_carrier_information
        numbers = [
            (n.phone_number, ProvidedDetails(pin=bool(n.pin), account_number=bool(carrier.account_number), address=True))
            for n in request.phone_numbers
        ]
        repository = PortabilityRepository(unit.connection)
        results = await check_numbers(repository, self.coverage_file, numbers,
                                      target_account_sid=request.account_sid,
                                      port_in_request_sid=request.port_in_request_sid)
        await repository.record_checks(results, target_account_sid=request.account_sid,
                                       requested_by=event.attributes.id,
                                       port_in_request_sid=request.port_in_request_sid)
        unit.publish(PortabilityChecked(
            port_in_request_sid=request.port_in_request_sid, account_sid=request.account_sid,
            revision=request.revision, results=results, checked_at=datetime.now(UTC),
        ))


async def follow_port_status(event: CloudEvent[PortStatusChanged], unit: UnitOfWork) -> None:
    change = event.data
    repository = PortabilityRepository(unit.connection)
    by_outcome: dict[str, list[str]] = {"hold": [], "reserve": [], "release": []}
    for number in change.phone_numbers:
        # The inventory is keyed by the normalised number; a malformed one was never checked nor reserved.
        e164 = normalised_e164(number.phone_number)
        if e164 is None:
            continue
        if number.status_to is NumberStatus.COMPLETED:
            by_outcome["hold"].append(e164)
        elif number.status_to in UNDER_WAY:
            by_outcome["reserve"].append(e164)
        elif number.status_to in RELEASED:
            by_outcome["release"].append(e164)
    if by_outcome["hold"]:
        await repository.hold(by_outcome["hold"], change.account_sid)
    if by_outcome["reserve"]:
        await repository.reserve(by_outcome["reserve"], change.account_sid, change.port_in_request_sid)
    if by_outcome["release"]:
        await repository.release(by_outcome["release"], change.port_in_request_sid)
    if change.status_to in ENDED_REQUEST:
        await repository.release(None, change.port_in_request_sid)
