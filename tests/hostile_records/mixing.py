"""Records from the catalogue: one kind's (`make`), a shuffled mix of all (`mix`), fresh good events.

`BAD_KINDS` and `ANSWERED_KINDS` are taken from `KINDS` when this module is imported, so the
catalogue must be registered first: the package's __init__ imports it before this module.
"""

from __future__ import annotations

from collections.abc import Sequence

from .core import KINDS, Hostile, Kind, Seeded


# --- building a mix ----------------------------------------------------------------------------

BAD_KINDS = [k for k in KINDS.values() if not k.answered]
ANSWERED_KINDS = [k for k in KINDS.values() if k.answered]


def records_of(one: Kind, ids: Seeded, key: bytes | None = None) -> list[Hostile]:
    """The record(s) one kind makes; `key` (when given) replaces every record's Kafka key."""
    parts = one.make(ids)
    out = []
    for index, part in enumerate((parts, *parts.extra)):
        if key is not None:
            part_key: bytes | None = key
        elif part.key is not None or one.name == "neither_key_nor_value":
            part_key = part.key
        else:
            part_key = (part.subject or ids.sid()).encode()
        out.append(Hostile(one.name, one.category, one.answered, part_key, part.value, tuple(part.headers),
                           part.subject if one.answered else None,
                           duplicate=index > 0 and (part.value, part.headers) == (parts.value, parts.headers)))
    return out


def make(name: str, seed: int = 0, key: bytes | None = None) -> list[Hostile]:
    """The record(s) of one kind."""
    return records_of(KINDS[name], Seeded(seed), key)


def mix(*, bad: int, good: int, seed: int, keys: Sequence[bytes] | None = None) -> list[Hostile]:
    """At least `bad` records to dead-letter over every bad kind (by weight), at least `good`
    events to answer over every answered kind, shuffled together. With `keys`, record i takes
    key i mod len(keys): the same seed then puts the same bytes in the same places."""
    ids = Seeded(seed)
    groups: list[list[Hostile]] = []  # a kind's extra records stay right behind its first
    for kinds, wanted in ((BAD_KINDS, bad), (ANSWERED_KINDS, good)):
        total = sum(k.weight for k in kinds)
        for one in kinds:
            for _ in range(max(1, round(wanted * one.weight / total + 0.4999))):
                groups.append(records_of(one, ids))
    ids.random.shuffle(groups)
    ordered = [r for group in groups for r in group]
    if keys:  # (a record with neither key nor value keeps none)
        ordered = [r if r.kind == "neither_key_nor_value" else r.with_key(keys[i % len(keys)])
                   for i, r in enumerate(ordered)]
    return ordered


def fresh_good(seed: int, count: int, key: bytes | None = None) -> list[Hostile]:
    ids = Seeded(seed)
    return [r for _ in range(count) for r in records_of(KINDS["plain_good_event"], ids, key)]
