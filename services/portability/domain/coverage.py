"""Coverage: which countries and number types port, how, and what their ports require.

Ops edit it as a file (`coverage.yaml`); this is its meaning, with no I/O.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas import CancellationPolicyKind, CountryCode, NumberType, PortingRequirements, PortingTrack
from schemas.types import BusinessDays, CalendarDays

from .numbers import PhoneNumberFacts


class CountryCoverage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # A number type absent here is not supported in this country.
    number_types: dict[NumberType, PortingTrack]
    pin_and_account_number_required: list[NumberType] = Field(default_factory=list)
    address_required: bool = False
    # Bounded as the contract bounds them: a file beyond them is refused when it loads.
    bill_max_age_days: CalendarDays | None = None
    customer_service_record_required: bool = False
    fee_per_number: Decimal | None = Field(default=None, ge=0)
    fee_currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    fee_acknowledgement_required: bool = False
    min_notice_business_days: BusinessDays
    cancellation_policy: CancellationPolicyKind
    review_sla_business_days: Annotated[BusinessDays, Field(ge=1)] = 1
    carrier_sla_business_days: Annotated[BusinessDays, Field(ge=1)] = 5
    unsupported_carriers: list[str] = Field(default_factory=list)
    unsupported_rate_centers: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _fee_has_its_currency(self) -> CountryCoverage:
        if self.fee_per_number is not None and self.fee_currency is None:
            raise ValueError("fee_per_number needs fee_currency")
        return self

    def pin_required(self, number_type: NumberType) -> bool:
        return number_type in self.pin_and_account_number_required

    def track_for(self, facts: PhoneNumberFacts) -> PortingTrack | None:
        """How this number ports, or None when its type, carrier or rate center is unsupported."""
        block = facts.block
        if block and (block.carrier_id in self.unsupported_carriers or
                      (block.rate_center and block.rate_center in self.unsupported_rate_centers)):
            return None
        return self.number_types.get(facts.number_type)

    def requirements(self, track: PortingTrack) -> PortingRequirements:
        return PortingRequirements(
            track=track,
            bill_max_age_days=self.bill_max_age_days,
            customer_service_record_required=self.customer_service_record_required,
            fee_per_number=self.fee_per_number,
            fee_currency=self.fee_currency,
            fee_acknowledgement_required=self.fee_acknowledgement_required,
            min_notice_business_days=self.min_notice_business_days,
            cancellation_policy=self.cancellation_policy,
            review_sla_business_days=self.review_sla_business_days,
            carrier_sla_business_days=self.carrier_sla_business_days,
        )


class Coverage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Countries absent here are not supported at all.
    countries: dict[CountryCode, CountryCoverage]

    def for_country(self, country: str | None) -> CountryCoverage | None:
        return self.countries.get(country) if country else None
