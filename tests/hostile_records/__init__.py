"""Records a hostile upstream would publish on `porting.port-requested.v1`, by kind.

Every kind says what a service must do with its record: `answered` (a valid event, however
odd: it is handled once and followed up) or not (a record that can never be an event: it is
dead-lettered once, with its original bytes). The expectation is written down per kind, not
derived, and tests/integration/test_hostile_input.py checks it against the contract's own
decoder so that a wrong expectation cannot hide a bug.

Everything is deterministic from a seed (ids, times, order), so a run can publish exactly the
same bytes again, e.g. after a broker restart.

The modules: core (the record, a valid event to start from, the registry of kinds); the
catalogue of kinds in kinds_value, kinds_size, kinds_data, kinds_header and kinds_valid;
mixing (records from the catalogue); publishing (to Kafka, and the dead letters read back);
poison (what the poison tests share). Everything the tests use is re-exported here.
"""

from __future__ import annotations

from .core import (
    EVENT_TIME,
    EVENT_TYPE,
    JUST_UNDER_ONE_MIB,
    KINDS,
    ONE_MIB,
    REJECTED_CUSTOMER,
    SOURCE,
    Header,
    Hostile,
    Kind,
    Parts,
    RawHeaderName,
    Seeded,
    as_json,
    carrier,
    document_of,
    event,
    headers_for,
    kind,
    name_bytes,
    payload,
    value_of,
    without,
)

# The catalogue. Each module registers its kinds in KINDS as it is imported, so the order of
# these imports is the order of the kinds (and so of a mix from a seed): keep it, unsorted.
# isort: off
from . import kinds_value  # noqa: F401  encodings of the value; JSON that is not the event's
from . import kinds_size  # noqa: F401  sizes; nesting
from . import kinds_data  # noqa: F401  numbers; dates and times; ids and values of the data
from . import kinds_header  # noqa: F401  envelope headers
from . import kinds_valid  # noqa: F401  valid events, however odd: answered once
# isort: on

# After the catalogue: mixing takes BAD_KINDS and ANSWERED_KINDS from KINDS as it is imported.
from .kinds_data import revision_written_as
from .mixing import ANSWERED_KINDS, BAD_KINDS, fresh_good, make, mix, records_of
from .poison import (
    ONE_PARTITION,
    answered_once,
    assert_kept_once_with_its_bytes,
    consumed,
    effects_of,
    loop_restarts,
    outbox_drained,
    poison_then_good,
    undecodable_polls,
)
from .publishing import (
    KeptDeadLetter,
    Placed,
    end_offsets,
    kept_dead_letters,
    publish_hostile,
    send_raw_batch,
    send_raw_records,
)

__all__ = [
    "ANSWERED_KINDS",
    "BAD_KINDS",
    "EVENT_TIME",
    "EVENT_TYPE",
    "JUST_UNDER_ONE_MIB",
    "KINDS",
    "ONE_MIB",
    "ONE_PARTITION",
    "REJECTED_CUSTOMER",
    "SOURCE",
    "Header",
    "Hostile",
    "KeptDeadLetter",
    "Kind",
    "Parts",
    "Placed",
    "RawHeaderName",
    "Seeded",
    "answered_once",
    "as_json",
    "assert_kept_once_with_its_bytes",
    "carrier",
    "consumed",
    "document_of",
    "effects_of",
    "end_offsets",
    "event",
    "fresh_good",
    "headers_for",
    "kept_dead_letters",
    "kind",
    "loop_restarts",
    "make",
    "mix",
    "name_bytes",
    "outbox_drained",
    "payload",
    "poison_then_good",
    "publish_hostile",
    "records_of",
    "revision_written_as",
    "send_raw_batch",
    "send_raw_records",
    "undecodable_polls",
    "value_of",
    "without",
]
