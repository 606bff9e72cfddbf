"""The porting event contract that every service imports."""
# ruff: noqa: F401  (this module re-exports the contract)

from .base import ContractModel, PortingEvent
from .cloudevents import CloudEvent, ContractViolation, EventAttributes, KafkaRecord, decode, encode
from .followups import (
    CancellationDenied,
    NumberPortability,
    NumberStatusChange,
    PortabilityChecked,
    PortAlertRaised,
    PortingRequirements,
    PortStatusChanged,
    PortSubmitted,
)
from .inbound import (
    CancelRequested,
    CarrierNumberResponse,
    CarrierResponded,
    LosingCarrierInformation,
    PortingDocument,
    PortRequested,
    PortScheduled,
    RequestedNumber,
    ServiceAddress,
)
from .topics import ALL_TOPICS, EVENTS_BY_TYPE, FOLLOW_UP_EVENTS, INBOUND_EVENTS, dead_letter_topic
from .types import *  # noqa: F403

__all__ = [name for name in dir() if not name.startswith("_")]
