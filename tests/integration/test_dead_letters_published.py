"""Through the real broker: a dead letter's copy always reaches the dead-letter topic."""

from __future__ import annotations

from pydantic import SecretStr

from porting_runtime.dead_letters import get_dead_letter
from porting_runtime.sealing import Sealer, generate_key
from schemas import KafkaRecord, dead_letter_topic

from ..kafka_support import collect, outbox_at_rest, publish, rows_are, wait_until
from .dead_letters_support import migrated
from .ledger import running


async def test_a_bad_event_near_the_brokers_limit_is_kept_whole_and_published_cut_and_the_next_follows(settings):
    key = generate_key()
    settings = settings.model_copy(update={"data_encryption_keys": SecretStr(key)})
    topic = settings.topic("porting.port-requested.v1")
    # JSON without a PIN or account number: its topic copy is its bytes (a value that is not JSON is withheld).
    near_limit = b'{"padding": "' + b"x" * 1_040_000 + b'"}'
    odd_headers = [("ce_id", b"big-1"), ("odd\x00name", b"kept"), ("no-value", None)]
    await publish(settings, [KafkaRecord(topic, b"k", near_limit, odd_headers),
                             KafkaRecord(topic, b"k", b'{"small": 2}', [("ce_id", b"small-2")])])

    async with running(settings):
        await wait_until(lambda: rows_are(settings, "dead_letters", 2))
        await wait_until(lambda: outbox_at_rest(settings))
        dead = await collect(settings, settings.topic(dead_letter_topic("ledger")), expect=2)

    assert [dict(d.headers)["dlt_source_offset"] for d in dead] == [b"0", b"1"]
    cut, small = dead
    assert near_limit.startswith(cut.value) and len(cut.value) < len(near_limit)
    assert dict(cut.headers)["dlt_truncated"].startswith(b"original ")
    assert list(cut.headers[:3]) == [("ce_id", b"big-1"), ("odd\x00name", b"kept"), ("no-value", None)]
    assert small.value == b'{"small": 2}' and "dlt_truncated" not in dict(small.headers)
    async with migrated(settings.database_url) as connection:
        kept = await get_dead_letter(connection, 1, Sealer([key]))
    assert kept.value == near_limit and kept.published_truncated
