"""The base of every event model: strict structure, and the topic it travels on."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class ContractModel(BaseModel):
    # Unknown fields are refused rather than ignored, so a publisher's typo is a dead
    # letter with a clear reason, not silently lost data. Additive fields therefore
    # roll out consumers first (see schemas/README.md).
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class PortingEvent(ContractModel):
    """An event of the contract. `event_type` is its ce_type and its canonical topic."""

    event_type: ClassVar[str]

    @property
    def subject(self) -> str:
        """The CloudEvents subject and Kafka key: the port-in request sid."""
        return self.port_in_request_sid  # type: ignore[attr-defined]
