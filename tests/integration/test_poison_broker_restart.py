"""Finding 3 of issue 6, the consumer's part: the embedded broker starts every offset at zero
again after a restart while PostgreSQL keeps its rows, so a new record can arrive in the very
place (topic, partition, offset) of a dead letter already kept, even with the very same bytes.
It is a new record: its dead letter is kept and published, not taken for a redelivery.
"""

from __future__ import annotations

import pytest

from porting_cli.embedded import EmbeddedKafka, free_port
from schemas import dead_letter_topic

from ..hostile_records import kept_dead_letters, make, outbox_drained, poison_then_good
from .ledger import collect, fetchval, running, wait_until


@pytest.mark.parametrize("kind", ["ce_id_with_a_null_value", "header_name_that_is_not_utf8"])
async def test_the_same_bad_bytes_in_the_same_place_after_a_broker_restart_are_a_new_dead_letter(settings, tmp_path, kind):
    port = free_port()
    broker = EmbeddedKafka(port=port, log_file=tmp_path / "kafka-1.log").start()
    settings = settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap_servers})
    try:
        async with running(settings):
            [before], _ = await poison_then_good(settings, make(kind, seed=19), good=2, seed=20)
        broker.stop()
        broker = EmbeddedKafka(port=port, log_file=tmp_path / "kafka-2.log").start()  # offsets from zero again
        async with running(settings):
            [after], _ = await poison_then_good(settings, make(kind, seed=19), good=2, seed=21)
            assert after.place == before.place, "the new broker put the same bytes in the same place"
            kept = await kept_dead_letters(settings)
            assert [row.place for row in kept] == [before.place, after.place], "neither dead letter dropped"
            assert await fetchval(settings.database_url, "SELECT count(*) FROM effects") == 4
            assert await wait_until(lambda: outbox_drained(settings), what="outbox drained")
            copies = await collect(settings, settings.topic(dead_letter_topic("ledger")), expect=1, settle=0.5)
            assert len(copies) == 1, "the new broker got the new dead letter"
    finally:
        broker.stop()
