"""What the benchmark can run: a registry of scenarios, name -> setup, publish, completion detector.

A scenario names the services its pipeline runs (each a `ServiceDefinition`), seeds their
databases once they are migrated, builds the records upstream systems publish (one unit of
work each, identified by a key), and recognises the follow-up record that completes a unit of
work. The workflow and notifier scenarios register here the same way when those services exist.
"""

from __future__ import annotations

import importlib
import itertools
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import asyncpg
from aiokafka import ConsumerRecord

from porting_runtime import ServiceDefinition
from schemas import KafkaRecord, PortabilityChecked, PortingEvent, PortRequested, encode

# Who publishes the benchmark's events (their ce_source).
BENCH_SOURCE = "porting-bench"


@dataclass(frozen=True)
class Workload:
    """The records to publish, in order, and the key of the unit of work each one starts."""

    keys: list[str]
    records: list[KafkaRecord]

    def __len__(self) -> int:
        return len(self.records)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    # "module:ATTRIBUTE" of each ServiceDefinition the pipeline runs, in start order.
    services: tuple[str, ...]
    # Topics (unprefixed) the benchmark publishes to, and the follow-ups it watches.
    inputs: tuple[type[PortingEvent], ...]
    completions: tuple[type[PortingEvent], ...]
    # Seeds the services' databases (service name -> database URL), after their migrations ran.
    setup: Callable[[Mapping[str, str]], Awaitable[None]]
    # (how many, topic prefix) -> the records; built before the clock starts.
    workload: Callable[[int, str], Workload]
    # The key of the unit of work a follow-up record completes, or None if it completes none.
    completes: Callable[[ConsumerRecord], str | None]

    def definitions(self) -> list[ServiceDefinition]:
        return [load_definition(target) for target in self.services]

    def input_topics(self, prefix: str) -> list[str]:
        return [f"{prefix}{event.event_type}" for event in self.inputs]

    def completion_topics(self, prefix: str) -> list[str]:
        return [f"{prefix}{event.event_type}" for event in self.completions]


def load_definition(target: str) -> ServiceDefinition:
    module, _, attribute = target.partition(":")
    definition = getattr(importlib.import_module(module), attribute)
    if not isinstance(definition, ServiceDefinition):
        raise TypeError(f"{target} is not a ServiceDefinition")
    return definition


# --- portability: PortRequested with one number -> PortabilityChecked -------------------------

BENCH_ACCOUNT = "AC" + "be" * 16
# Valid North American numbers (libphonenumber), none in the inventory nor in a wireless block.
AREA_CODES = ("201", "202", "212", "213", "312", "415", "503", "617", "646", "718", "305", "404", "512", "206", "303")


def bench_number(index: int) -> str:
    """A distinct valid number for each index below 150,000 (then they repeat)."""
    area = AREA_CODES[(index // 10_000) % len(AREA_CODES)]
    return f"+1{area}555{index % 10_000:04d}"


def port_request(index: int) -> PortRequested:
    number = bench_number(index)
    return PortRequested.model_validate({
        "port_in_request_sid": "KW" + secrets.token_hex(16),
        "account_sid": BENCH_ACCOUNT,
        "revision": 1,
        "phone_numbers": [{"phone_number": number, "pin": "1234"}],
        "losing_carrier_information": {
            "customer_name": "Ada Lovelace",
            "account_number": "ACC-991",
            "account_telephone_number": number,
            "authorized_representative": "Ada Lovelace",
            "authorized_representative_email": "ada@example.com",
            "customer_type": "Business",
            "address": {"street": "1 Market St", "city": "San Francisco", "state": "CA", "zip": "94105",
                        "country": "US"},
        },
        "notification_emails": ["ada@example.com"],
        "target_port_in_date": date(2027, 3, 2).isoformat(),
        "documents": [],
    })


# Every workload of a run takes the next numbers: no phase repeats another's (a cache of numbers
# already checked would otherwise flatter the measurement).
_next_number = itertools.count()


def _portability_workload(count: int, prefix: str) -> Workload:
    keys, records = [], []
    for _ in range(count):
        event = port_request(next(_next_number))
        keys.append(event.port_in_request_sid)
        records.append(encode(event, source=BENCH_SOURCE, topic=f"{prefix}{event.event_type}"))
    return Workload(keys, records)


async def _portability_setup(databases: Mapping[str, str]) -> None:
    from portability.adapters.credentials import hash_token
    from portability.adapters.repository import PortabilityRepository

    connection = await asyncpg.connect(databases["portability"])
    try:
        await PortabilityRepository(connection).add_account(BENCH_ACCOUNT, hash_token("bench"), None)
    finally:
        await connection.close()


def by_key(record: ConsumerRecord) -> str | None:
    """Every follow-up is keyed by the request sid: its arrival completes that request."""
    return record.key.decode() if record.key else None


PORTABILITY = Scenario(
    name="portability",
    description="PortRequested with one number each -> the portability service -> PortabilityChecked",
    services=("portability.service:PORTABILITY",),
    inputs=(PortRequested,),
    completions=(PortabilityChecked,),
    setup=_portability_setup,
    workload=_portability_workload,
    completes=by_key,
)

SCENARIOS: dict[str, Scenario] = {scenario.name: scenario for scenario in (PORTABILITY,)}


def scenario_named(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    return SCENARIOS[name]


def all_topics(scenario: Scenario, prefix: str, definitions: Sequence[ServiceDefinition]) -> list[str]:
    """Every topic a phase uses, so the benchmark can create them before it starts watching."""
    from schemas import dead_letter_topic

    topics = {*scenario.input_topics(prefix), *scenario.completion_topics(prefix)}
    for definition in definitions:
        topics.update(f"{prefix}{t}" for t in definition.publishes)
        topics.add(f"{prefix}{dead_letter_topic(definition.name)}")
    return sorted(topics)
