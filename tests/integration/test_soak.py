"""Soak: instances killed again and again while events flow; every effect happens exactly once.

Slow, so excluded from `make test`; run it with `make soak`.
"""

from __future__ import annotations

import pytest

from schemas import PortAlertRaised

from ..factories import port_requested
from .ledger import collect, fetchval, port_requested_record, publish, rows_at_least, running, wait_until
from .test_runtime_crashes import start_worker

WAVES, CHUNK = 5, 25


@pytest.mark.soak
async def test_repeated_kills_of_one_of_two_instances_lose_nothing_and_duplicate_nothing(settings):
    settings = settings.model_copy(update={"consumer_batch_size": 20})
    published = 0
    async with running(settings):
        for wave in range(WAVES):
            worker = await start_worker(settings)

            async def worker_is_busy(pid=worker.pid):
                return await fetchval(settings.database_url,
                                      "SELECT count(*) FROM effects WHERE worker_pid = $1", pid) >= 20

            # Events keep flowing until the new instance has joined and is handling its share.
            for _ in range(600):
                await publish(settings, [port_requested_record(settings, port_requested()) for _ in range(CHUNK)])
                published += CHUNK
                if await worker_is_busy():
                    break
            assert await worker_is_busy(), f"wave {wave}: the new instance took part"
            worker.kill()  # wherever it is: mid-batch, between commits, mid-publish
            await worker.wait()
        assert await wait_until(lambda: rows_at_least(settings, "effects", published), timeout=180)
        follow_ups = await collect(settings, settings.topic(PortAlertRaised.event_type), expect=published, timeout=120)

    assert await fetchval(settings.database_url, "SELECT count(*) FROM effects") == published
    assert await fetchval(settings.database_url, "SELECT count(DISTINCT event_id) FROM effects") == published
    assert len({dict(r.headers)["ce_id"] for r in follow_ups}) == published
    assert await fetchval(settings.database_url, "SELECT count(DISTINCT worker_pid) FROM effects") == WAVES + 1
