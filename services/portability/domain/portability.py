"""The Portability API's rules: for a number and a target account, portable or why not.

Precedence, first match wins:
  1. 22102 INVALID_PHONE_NUMBER   not strict E.164 (ASCII digits, canonical spelling), or not a valid
                                  number for its country
  2. 20003 UNAUTHORIZED           the caller may not act for the target account (or it is unknown)
  3. 22131 ALREADY_IN_THE_TARGET_ACCOUNT, 22136 ALREADY_IN_ONE_OF_YOUR_TWILIO_ACCOUNTS,
     22132 ALREADY_IN_TWILIO_DIFFERENT_OWNER
                                  the number is held, or being ported, by the target account,
                                  by another of the same customer's accounts, or by someone else
  4. 22130 UNSUPPORTED            country, number type, carrier or rate center not covered
  5. 22133 MANUAL_PORTING_AVAILABLE  covered only by the manual process
  6. 22171 MISSING_REQUIRED_FIELDS   a PIN and account number, or an address, required but not given
22135 ERROR_INTERNAL_SERVER_ERROR is the answer when the evaluation itself fails (service layer).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from schemas import NumberPortability, NumberType, PortabilityReason, PortingRequirements, PortingTrack

from .accounts import AccountHierarchy
from .coverage import Coverage
from .numbers import E164Number, NumberBlock, describe, parse_e164


@dataclass(frozen=True)
class Holding:
    """A number in the inventory: held by an account, or reserved while a port into it is under way."""

    account_sid: str
    port_in_request_sid: str | None = None


@dataclass(frozen=True)
class ProvidedDetails:
    """What the asker gave for the number. None: not asked (an HTTP check has no PIN to give)."""

    pin: bool | None = None
    account_number: bool | None = None
    address: bool | None = None


@dataclass(frozen=True)
class PortabilityQuestion:
    phone_number: str
    target_account_sid: str | None
    authorized: bool
    provided: ProvidedDetails = ProvidedDetails()
    # The request asking, whose own reservation of the number does not count against it.
    port_in_request_sid: str | None = None


@dataclass(frozen=True)
class PortingFacts:
    """What the rules read besides the question: all loaded beforehand by the service layer."""

    coverage: Coverage
    hierarchy: AccountHierarchy
    holdings: Mapping[str, Holding]
    blocks: Mapping[str, NumberBlock]
    # Numbers as given, already parsed (None: not E.164), so a batch parses each once; others are parsed here.
    parsed: Mapping[str, E164Number | None] = field(default_factory=dict)
    # Requirements already built, by country and track (see requirements).
    _requirements: dict[tuple[str, PortingTrack], PortingRequirements] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def requirements(self, country: str, track: PortingTrack) -> PortingRequirements:
        """What the country's coverage asks of a port on this track: the same for each of a batch's
        numbers there, so built once per batch rather than once per number."""
        key = (country, track)
        if key not in self._requirements:
            self._requirements[key] = self.coverage.countries[country].requirements(track)
        return self._requirements[key]


def is_authorized(hierarchy: AccountHierarchy, target_account_sid: str | None, caller_account_sid: str | None) -> bool:
    """With a caller (the HTTP API), the caller must be allowed to act for the target account;
    without one (an event), the target account must exist. No target at all (an operator's
    what-if): nobody to authorize, and every holder is someone else."""
    if target_account_sid is None:
        return True
    if caller_account_sid:
        return hierarchy.may_act_for(caller_account_sid, target_account_sid)
    return hierarchy.knows(target_account_sid)


def assess(question: PortabilityQuestion, facts: PortingFacts) -> NumberPortability:
    raw = question.phone_number
    parsed = facts.parsed[raw] if raw in facts.parsed else parse_e164(raw)
    if parsed is None:
        return not_portable(question.phone_number, PortabilityReason.INVALID_PHONE_NUMBER)
    # From here on only the normalised number: holdings and blocks are keyed by it.
    number = describe(parsed, facts.blocks)
    country = facts.coverage.for_country(number.country)
    answer = {
        "phone_number": number.e164,
        "number_type": number.number_type,
        "country": number.country,
        "pin_and_account_number_required": bool(country and country.pin_required(number.number_type)),
    }
    if not question.authorized:
        return _answer(answer, PortabilityReason.UNAUTHORIZED)

    holding = facts.holdings.get(number.e164)
    if holding and not (question.port_in_request_sid and holding.port_in_request_sid == question.port_in_request_sid):
        if holding.account_sid == question.target_account_sid:
            return _answer(answer, PortabilityReason.ALREADY_IN_THE_TARGET_ACCOUNT, holding.account_sid)
        if question.target_account_sid and facts.hierarchy.same_customer(holding.account_sid, question.target_account_sid):
            return _answer(answer, PortabilityReason.ALREADY_IN_ONE_OF_YOUR_TWILIO_ACCOUNTS, holding.account_sid)
        return _answer(answer, PortabilityReason.ALREADY_IN_TWILIO_DIFFERENT_OWNER)

    track = country.track_for(number) if country else None
    if country is None or track is None:
        return _answer(answer, PortabilityReason.UNSUPPORTED)
    requirements = facts.requirements(number.country, track)
    if track is PortingTrack.MANUAL:
        return _answer(answer, PortabilityReason.MANUAL_PORTING_AVAILABLE, requirements=requirements)
    if _missing_required_fields(question.provided, answer["pin_and_account_number_required"], country.address_required):
        return _answer(answer, PortabilityReason.MISSING_REQUIRED_FIELDS, requirements=requirements)
    return NumberPortability(**answer, portable=True, requirements=requirements)


def _missing_required_fields(provided: ProvidedDetails, pin_required: bool, address_required: bool) -> bool:
    if pin_required and (provided.pin is False or provided.account_number is False):
        return True
    return address_required and provided.address is False


def _answer(answer: dict, reason: PortabilityReason, account_sid: str | None = None,
            requirements: PortingRequirements | None = None) -> NumberPortability:
    return NumberPortability(**answer, portable=False, not_portable_reason=reason.name,
                             not_portable_reason_code=reason, account_sid=account_sid, requirements=requirements)


def not_portable(phone_number: str, reason: PortabilityReason) -> NumberPortability:
    """An answer that knows nothing of the number but the reason (malformed, or an internal error)."""
    return NumberPortability(
        phone_number=phone_number, portable=False, pin_and_account_number_required=False,
        not_portable_reason=reason.name, not_portable_reason_code=reason, number_type=NumberType.UNKNOWN,
    )
