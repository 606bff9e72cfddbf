"""The review of a port request, decided automatically when its portability check arrives.

Each rule is a function returning the failures it finds. A failure has a stable reason code
(what webhooks, e-mails and dashboards key on) and one sentence telling the customer how to
fix it. A number passes when no rule fails for it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from schemas import DocumentKind, PortingDocument, PortingRequirements, PortRequested, ServiceAddress

from .calendar import BusinessCalendar


@dataclass(frozen=True)
class ReviewFailure:
    code: str
    fix: str


PO_BOX_ADDRESS = ReviewFailure(
    "PO_BOX_ADDRESS",
    "The service address is a PO box; give the physical address where the numbers are in service, "
    "as your current carrier has it on file, in a corrected request.")
LOA_MISSING = ReviewFailure(
    "LOA_MISSING",
    "Attach a Letter of Authorization signed by the authorized representative named in the request.")
LOA_SIGNER_MISMATCH = ReviewFailure(
    "LOA_SIGNER_MISMATCH",
    "The Letter of Authorization must be signed by the authorized representative named in the request; "
    "have that person sign it, or correct the representative's name, and send a corrected request.")
BILL_MISSING = ReviewFailure(
    "BILL_MISSING",
    "Attach a copy of your most recent bill from the current carrier, showing the account, the owner's "
    "name and the service address.")
BILL_TOO_OLD = ReviewFailure(
    "BILL_TOO_OLD",
    "The bill attached is too old; attach your most recent bill from the current carrier, issued within "
    "the last {days} days.")
CSR_MISSING = ReviewFailure(
    "CSR_MISSING",
    "Attach the Customer Service Record your current carrier keeps for these numbers; ask the carrier "
    "for it if you do not have it.")
PIN_MISSING = ReviewFailure(
    "PIN_MISSING",
    "Give the port-out PIN of this number, which your current carrier provides on request, in a "
    "corrected request.")
ACCOUNT_NUMBER_MISSING = ReviewFailure(
    "ACCOUNT_NUMBER_MISSING",
    "Give the account number you hold with your current carrier, exactly as on your bill, in a "
    "corrected request.")
FEES_NOT_ACKNOWLEDGED = ReviewFailure(
    "FEES_NOT_ACKNOWLEDGED",
    "Porting numbers from this country has fees; approve them in a corrected request so that the "
    "review can start.")
PORT_DATE_NOT_BUSINESS_DAY = ReviewFailure(
    "PORT_DATE_NOT_BUSINESS_DAY",
    "The requested port date is a weekend day or a public holiday in the number's country; choose a "
    "business day, or leave the date out to take the first one available.")
PORT_DATE_TOO_SOON = ReviewFailure(
    "PORT_DATE_TOO_SOON",
    "The requested port date is too soon; choose a date at least {days} business days from today, or "
    "leave the date out to take the first one available.")

# PO boxes as people type them, after accents are removed and case folded: "P.O. Box 12",
# "PO Box", "P O Box", "POBox", "P.O.B. 12", "Post Office Box", "Postal Box", French "Case
# postale", "C.P. 123", "CP 123", and "Boîte postale"/"B.P. 12" as France writes it.
_PO_BOX = re.compile(
    r"""(?<![a-z0-9])(?:
          p\s*\.?\s*o\s*\.?\s*b(?:ox)?(?![a-z])
        | post(?:al)?\s*(?:office\s*)?box
        | case\s*postale
        | boite\s*postale
        | c\s*\.\s*p\s*\.
        | c\s*\.?\s*p\s*\.?\s*[0-9]
        | b\s*\.\s*p\s*\.
        | b\s*\.?\s*p\s*\.?\s*[0-9]
    )""",
    re.VERBOSE,
)


def folded(text: str) -> str:
    """Case, spacing and accent insensitive form: "  José  GARCÍA " -> "jose garcia"."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().split())


def is_po_box(text: str | None) -> bool:
    return bool(text) and _PO_BOX.search(folded(text)) is not None


def same_person(one: str, other: str) -> bool:
    return folded(one) == folded(other)


def service_address_failures(address: ServiceAddress) -> list[ReviewFailure]:
    """Seed 002: "This must be an actual physical address. PO Boxes are not valid addresses for porting." """
    return [PO_BOX_ADDRESS] if is_po_box(address.street) or is_po_box(address.street_2) else []


def _documents(details: PortRequested, kind: DocumentKind) -> list[PortingDocument]:
    return [d for d in details.documents if d.kind is kind]


def loa_failures(details: PortRequested) -> list[ReviewFailure]:
    """A signed LOA whose signer is the authorized representative (seed 002: "signed by an
    authorized user of the number(s)")."""
    letters = _documents(details, DocumentKind.LETTER_OF_AUTHORIZATION)
    signed = [d for d in letters if d.signed_by]
    if not signed:
        return [LOA_MISSING]
    representative = details.losing_carrier_information.authorized_representative
    if not any(same_person(d.signed_by or "", representative) for d in signed):
        return [LOA_SIGNER_MISMATCH]
    return []


def bill_failures(details: PortRequested, requirements: PortingRequirements, today: date) -> list[ReviewFailure]:
    """Seed 002: "the most recent phone bill (within the last 30 days)". The newest bill counts."""
    if requirements.bill_max_age_days is None:
        return []
    bills = _documents(details, DocumentKind.UTILITY_BILL)
    if not bills:
        return [BILL_MISSING]
    newest = max(d.dated for d in bills)
    if (today - newest).days > requirements.bill_max_age_days:
        return [ReviewFailure(BILL_TOO_OLD.code, BILL_TOO_OLD.fix.format(days=requirements.bill_max_age_days))]
    return []


def csr_failures(details: PortRequested, requirements: PortingRequirements) -> list[ReviewFailure]:
    if requirements.customer_service_record_required and not _documents(details, DocumentKind.CUSTOMER_SERVICE_RECORD):
        return [CSR_MISSING]
    return []


def pin_failures(details: PortRequested, phone_number: str, required: bool) -> list[ReviewFailure]:
    if not required:
        return []
    failures = []
    pins = [n.pin for n in details.phone_numbers if n.phone_number == phone_number]
    if not any(pins):
        failures.append(PIN_MISSING)
    if not details.losing_carrier_information.account_number:
        failures.append(ACCOUNT_NUMBER_MISSING)
    return failures


def fee_failures(details: PortRequested, requirements: PortingRequirements) -> list[ReviewFailure]:
    """Seed 000: "Upon receiving your approval for the porting fee(s) ... Twilio will review"."""
    if requirements.fee_acknowledgement_required and not details.fees_acknowledged:
        return [FEES_NOT_ACKNOWLEDGED]
    return []


def port_date_failures(requested: date | None, requirements: PortingRequirements, calendar: BusinessCalendar,
                       today: date) -> list[ReviewFailure]:
    """A requested date, when given, is a business day of the number's country and gives at
    least the country's minimum notice, counted in business days from the day of review."""
    if requested is None:
        return []
    if not calendar.is_business_day(requested):
        return [PORT_DATE_NOT_BUSINESS_DAY]
    days = requirements.min_notice_business_days
    if calendar.business_days_between(today, requested, at_most=days) < days:
        return [ReviewFailure(PORT_DATE_TOO_SOON.code, PORT_DATE_TOO_SOON.fix.format(days=days))]
    return []


def review_number(details: PortRequested, phone_number: str, *, requirements: PortingRequirements,
                  pin_and_account_number_required: bool, calendar: BusinessCalendar,
                  today: date) -> list[ReviewFailure]:
    """Every failure of one number, so the customer fixes them all in one revision."""
    return [
        *service_address_failures(details.losing_carrier_information.address),
        *loa_failures(details),
        *fee_failures(details, requirements),
        *bill_failures(details, requirements, today),
        *csr_failures(details, requirements),
        *pin_failures(details, phone_number, pin_and_account_number_required),
        *port_date_failures(details.target_port_in_date, requirements, calendar, today),
    ]
