"""Answering portability questions: load what the rules read, then apply them number by number."""

from __future__ import annotations

from collections.abc import Sequence

from porting_runtime.logs import get_logger
from schemas import NumberPortability, PortabilityReason

from ..adapters.coverage_file import CoverageFile, CoverageUnavailable
from ..adapters.repository import PortabilityRepository
from ..domain.numbers import normalised_e164
from ..domain.portability import PortabilityQuestion, PortingFacts, ProvidedDetails, assess, not_portable

log = get_logger(__name__)


async def check_numbers(
    repository: PortabilityRepository,
    coverage_file: CoverageFile,
    numbers: Sequence[tuple[str, ProvidedDetails]],
    *,
    target_account_sid: str | None,
    caller_account_sid: str | None = None,
    port_in_request_sid: str | None = None,
) -> list[NumberPortability]:
    """One answer per number, in order. A failure to evaluate answers 22135 for the numbers it touched.

    With a caller (the HTTP API), the caller must be allowed to act for the target account;
    without one (an event), the target account must exist.
    """
    try:
        coverage = coverage_file.current()
    except CoverageUnavailable as error:
        log.error("coverage unavailable", error=str(error))
        return [not_portable(n, PortabilityReason.ERROR_INTERNAL_SERVER_ERROR) for n, _ in numbers]
    # Looked up by the normalised number only: the raw one is whatever the asker typed.
    wellformed = [e164 for n, _ in numbers if (e164 := normalised_e164(n))]
    holdings = await repository.holdings(wellformed)
    accounts = {*(h.account_sid for h in holdings.values()), *([target_account_sid] if target_account_sid else [])}
    if caller_account_sid:
        accounts.add(caller_account_sid)
    hierarchy = await repository.hierarchy_around(accounts)
    facts = PortingFacts(coverage, hierarchy, holdings, await repository.blocks_for(wellformed))
    # No target at all (an operator's what-if): nobody to authorize, every holder is someone else.
    authorized = (target_account_sid is None
                  or (hierarchy.may_act_for(caller_account_sid, target_account_sid) if caller_account_sid
                      else hierarchy.knows(target_account_sid)))
    answers = []
    for number, provided in numbers:
        question = PortabilityQuestion(number, target_account_sid, authorized, provided, port_in_request_sid)
        try:
            answers.append(assess(question, facts))
        except Exception:  # one number's failure must not lose the others' answers
            log.exception("portability check failed", phone_number=number)
            answers.append(not_portable(number, PortabilityReason.ERROR_INTERNAL_SERVER_ERROR))
    return answers
