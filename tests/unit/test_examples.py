"""The README's example events are valid against the contract and tell one request's story."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas import CancelRequested, CarrierResponded, PortRequested, PortScheduled

EXAMPLES = Path(__file__).parents[2] / "examples"
KINDS = {"port-requested": PortRequested, "carrier-rejected": CarrierResponded, "carrier-accepted": CarrierResponded,
         "port-scheduled": PortScheduled, "carrier-activated": CarrierResponded, "cancel-requested": CancelRequested}


def test_every_example_is_named_here():
    assert {p.stem for p in EXAMPLES.glob("*.json")} == set(KINDS)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_example_is_a_valid_event_of_the_one_example_request(name):
    event = KINDS[name].model_validate(json.loads((EXAMPLES / f"{name}.json").read_text()))
    request = PortRequested.model_validate(json.loads((EXAMPLES / "port-requested.json").read_text()))
    assert event.port_in_request_sid == request.port_in_request_sid
