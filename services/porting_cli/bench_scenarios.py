"""What the benchmark can run: a registry of scenarios, name -> setup, publish, completion detector.

A scenario names the services its pipeline runs (each a `ServiceDefinition`), seeds their
databases once they are migrated, builds the records upstream systems publish (one unit of
work each, identified by a key), and recognises the follow-up record that completes a unit of
work. Three are registered: portability alone, portability and workflow (to the PortSubmitted),
and the whole pipeline through the notifier (to the customer's first e-mail, `completion="mail"`:
the benchmark then watches its SMTP catcher instead of topics).
"""

from __future__ import annotations

import functools
import importlib
import itertools
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg
from aiokafka import ConsumerRecord
from porting_runtime import ServiceDefinition

from schemas import KafkaRecord, PortabilityChecked, PortingEvent, PortRequested, PortSubmitted, encode

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
    # The target for this pipeline, end to end (reported, never asserted).
    target_per_second: float = 5000
    # Events of the throughput phase when --events is not given (keeps `make bench` short).
    default_events: int = 20_000
    # "topics": a follow-up record completes a unit of work; "mail": a customer e-mail accepted by
    # the benchmark's SMTP catcher does (the notifier is pointed at it).
    completion: str = "topics"
    # Settings the benchmark gives a service beyond broker, database and prefix (service -> values).
    service_settings: Callable[[], Mapping[str, Mapping[str, object]]] = dict

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


@functools.cache
def port_date(today: date | None = None) -> date:
    """A date the workflow's review accepts: 15 US business days ahead (more than the minimum notice)."""
    from workflow.domain.calendar import BusinessCalendar

    return BusinessCalendar("US").add_business_days(today or datetime.now(UTC).date(), 15)


def port_request(index: int) -> PortRequested:
    """A US request that passes the workflow's review: physical address, an LOA signed by the
    authorized representative, PIN and account number, a port date on a business day with notice."""
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
        "target_port_in_date": port_date().isoformat(),
        "documents": [{"document_sid": "loa-bench", "kind": "letter_of_authorization",
                       "dated": (datetime.now(UTC).date() - timedelta(days=3)).isoformat(),
                       "signed_by": "Ada Lovelace"}],
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


# --- workflow: ... -> PortabilityChecked -> the workflow -> PortStatusChanged and PortSubmitted ----

WORKFLOW = Scenario(
    name="workflow",
    description="PortRequested with one number each (a US request that passes review) -> portability -> "
                "PortabilityChecked -> workflow -> PortStatusChanged(in_review -> in_progress) and PortSubmitted; "
                "a request completes at its PortSubmitted",
    services=("portability.service:PORTABILITY", "workflow.service:WORKFLOW"),
    inputs=(PortRequested,),
    completions=(PortSubmitted,),
    setup=_portability_setup,
    workload=_portability_workload,
    completes=by_key,
    target_per_second=2000,
    default_events=10_000,
)


# --- pipeline: ... -> the notifier -> the customer's first e-mail, accepted by the SMTP catcher ---

# A whsec_ secret for the run (the notifier's webhooks wait while none is set; the benchmark's
# requests name no webhook_url, so none is sent).
def _notifier_settings() -> dict[str, dict[str, object]]:
    import base64

    return {"notifier": {"webhook_signing_secret": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
                         "ops_alert_emails": []}}


PIPELINE = Scenario(
    name="pipeline",
    description="PortRequested with one number each -> portability -> workflow -> notifier -> the customer's "
                "first e-mail accepted by the local SMTP catcher (aiosmtpd); a request completes at that e-mail",
    services=("portability.service:PORTABILITY", "workflow.service:WORKFLOW", "notifier.service:NOTIFIER"),
    inputs=(PortRequested,),
    completions=(),
    setup=_portability_setup,
    workload=_portability_workload,
    completes=by_key,
    target_per_second=1000,
    default_events=5_000,
    completion="mail",
    service_settings=_notifier_settings,
)

SCENARIOS: dict[str, Scenario] = {scenario.name: scenario for scenario in (PORTABILITY, WORKFLOW, PIPELINE)}
ALL = "all"


def scenarios_named(name: str) -> list[Scenario]:
    """`all` (every scenario, in registry order), one name, or several comma-separated."""
    names = [part.strip() for part in name.split(",") if part.strip()]
    if names == [ALL]:
        return list(SCENARIOS.values())
    if not names:
        raise KeyError(f"no scenario named; known: {ALL}, {', '.join(SCENARIOS)}")
    return [scenario_named(n) for n in dict.fromkeys(names)]


def scenario_named(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; known: {ALL}, {', '.join(SCENARIOS)}")
    return SCENARIOS[name]


def all_topics(scenario: Scenario, prefix: str, definitions: Sequence[ServiceDefinition]) -> list[str]:
    """Every topic a phase uses, so the benchmark can create them before it starts watching."""
    from schemas import dead_letter_topic

    topics = {*scenario.input_topics(prefix), *scenario.completion_topics(prefix)}
    for definition in definitions:
        topics.update(f"{prefix}{t}" for t in definition.publishes)
        topics.add(f"{prefix}{dead_letter_topic(definition.name)}")
    return sorted(topics)
