"""Answering portability questions: load what the rules read for all of them at once, then apply
the rules number by number."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from porting_runtime.logs import get_logger
from schemas import NumberPortability, PortabilityReason

from ..adapters.coverage_file import CoverageFile, CoverageUnavailable
from ..adapters.repository import PortabilityRepository
from ..domain.numbers import parse_e164
from ..domain.portability import (
    PortabilityQuestion,
    PortingFacts,
    ProvidedDetails,
    assess,
    is_authorized,
    not_portable,
)

log = get_logger(__name__)


@dataclass(frozen=True)
class CheckRequest:
    """One asker's numbers (as given, with what was provided for each), and for which account."""

    numbers: Sequence[tuple[str, ProvidedDetails]]
    target_account_sid: str | None
    caller_account_sid: str | None = None
    # The port request asking, whose own reservations do not count against it.
    port_in_request_sid: str | None = None


async def check_requests(repository: PortabilityRepository, coverage_file: CoverageFile,
                         requests: Sequence[CheckRequest]) -> list[list[NumberPortability]]:
    """For each request, one answer per number, in order: one query for holdings, the account
    hierarchy and number blocks together, whatever the number of requests. A failure to evaluate answers
    22135 for the numbers it touched."""
    try:
        coverage = coverage_file.current()
    except CoverageUnavailable as error:
        log.error("coverage unavailable", error=str(error))
        return [[not_portable(n, PortabilityReason.ERROR_INTERNAL_SERVER_ERROR) for n, _ in r.numbers] for r in requests]
    parsed = {raw: parse_e164(raw) for request in requests for raw, _ in request.numbers}
    # Looked up by the normalised number only: the raw one is whatever the asker typed.
    e164s = sorted({n.e164 for n in parsed.values() if n is not None})
    askers = {sid for r in requests for sid in (r.target_account_sid, r.caller_account_sid) if sid}
    holdings, hierarchy, blocks = await repository.lookups(e164s, askers)
    facts = PortingFacts(coverage, hierarchy, holdings, blocks, parsed)
    return [_answers(request, facts) for request in requests]


def _answers(request: CheckRequest, facts: PortingFacts) -> list[NumberPortability]:
    authorized = is_authorized(facts.hierarchy, request.target_account_sid, request.caller_account_sid)
    answers = []
    for number, provided in request.numbers:
        question = PortabilityQuestion(number, request.target_account_sid, authorized, provided,
                                       request.port_in_request_sid)
        try:
            answers.append(assess(question, facts))
        except Exception:  # one number's failure must not lose the others' answers
            log.exception("portability check failed", phone_number=number)
            answers.append(not_portable(number, PortabilityReason.ERROR_INTERNAL_SERVER_ERROR))
    return answers


async def check_numbers(
    repository: PortabilityRepository,
    coverage_file: CoverageFile,
    numbers: Sequence[tuple[str, ProvidedDetails]],
    *,
    target_account_sid: str | None,
    caller_account_sid: str | None = None,
    port_in_request_sid: str | None = None,
) -> list[NumberPortability]:
    """One asker's answers (the HTTP API, the operator's check): see check_requests."""
    [answers] = await check_requests(repository, coverage_file, [CheckRequest(
        numbers, target_account_sid, caller_account_sid, port_in_request_sid)])
    return answers
