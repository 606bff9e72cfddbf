"""A process killed at the worst moment loses nothing and duplicates nothing."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from schemas import PortAlertRaised

from ..kafka_support import service_environment
from ..factories import port_requested
from .ledger import (
    collect,
    committed_offsets,
    fetchval,
    port_requested_record,
    publish,
    rows_at_least,
    running,
    wait_until,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


async def start_worker(settings, *, die_after_commit: bool = False) -> asyncio.subprocess.Process:
    environment = service_environment(settings, LEDGER_DIE_AFTER_COMMIT="1" if die_after_commit else "0",
                                      CONSUMER_BATCH_SIZE="10")
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.ledger_worker", cwd=PROJECT_ROOT, env=environment,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )


async def test_a_process_killed_after_its_database_commit_and_before_its_offset_commit_redelivers_without_a_second_effect(settings):
    record = port_requested_record(settings, port_requested())
    await publish(settings, [record])
    worker = await start_worker(settings, die_after_commit=True)
    assert await asyncio.wait_for(worker.wait(), 60) == -signal.SIGKILL
    assert await fetchval(settings.database_url, "SELECT count(*) FROM effects") == 1
    offsets = await committed_offsets(settings, "ledger", record.topic)
    assert not any(offsets.values()), "the killed process never committed its offset"

    async with running(settings):
        async def redelivered_and_committed():
            return sum(o or 0 for o in (await committed_offsets(settings, "ledger", record.topic)).values()) == 1
        assert await wait_until(redelivered_and_committed)
        follow_ups = await collect(settings, settings.topic(PortAlertRaised.event_type), expect=1, settle=2.0)

    assert await fetchval(settings.database_url, "SELECT count(*) FROM effects") == 1
    assert len(follow_ups) == 1


async def test_two_instances_share_the_work_and_one_killed_midway_loses_nothing_and_duplicates_no_effect(settings):
    records = [port_requested_record(settings, port_requested()) for _ in range(300)]
    settings = settings.model_copy(update={"consumer_batch_size": 10})
    doomed = await start_worker(settings)
    try:
        async with running(settings) as service:
            async def both_assigned():
                consumer = service.consume_loop.consumer
                return consumer is not None and 0 < len(consumer.assignment()) < 6
            assert await wait_until(both_assigned, timeout=60), "the partitions are split between the two"
            await publish(settings, records)
            async def doomed_is_working():
                return await fetchval(settings.database_url, "SELECT count(*) FROM effects WHERE worker_pid = $1",
                                      doomed.pid) >= 10
            assert await wait_until(doomed_is_working, timeout=60, interval=0.02)
            doomed.kill()  # mid-stream, at whatever point it has reached
            await doomed.wait()
            assert await wait_until(lambda: rows_at_least(settings, "effects", 300), timeout=90)
            follow_ups = await collect(settings, settings.topic(PortAlertRaised.event_type), expect=300, settle=2.0)
    finally:
        if doomed.returncode is None:
            doomed.kill()

    assert await fetchval(settings.database_url, "SELECT count(*) FROM effects") == 300
    assert await fetchval(settings.database_url, "SELECT count(DISTINCT event_id) FROM effects") == 300
    assert await fetchval(settings.database_url, "SELECT count(DISTINCT worker_pid) FROM effects") == 2, "both shared the work"
    # A relay killed between the broker's ack and deleting the row may publish a row
    # again, with the same ce_id (consumers dedupe on it); no follow-up is ever missing.
    follow_up_ids = {dict(r.headers)["ce_id"] for r in follow_ups}
    assert len(follow_up_ids) == 300


async def test_sigterm_mid_stream_stops_the_service_cleanly_and_a_restart_finishes_the_work_exactly_once(settings):
    records = [port_requested_record(settings, port_requested()) for _ in range(200)]
    settings = settings.model_copy(update={"consumer_batch_size": 10})
    await publish(settings, records)
    worker = await start_worker(settings)
    assert await wait_until(lambda: rows_at_least(settings, "effects", 10), timeout=60, interval=0.02)
    worker.terminate()
    assert await asyncio.wait_for(worker.wait(), 30) == 0, "a clean exit, not a kill"

    async with running(settings):
        assert await wait_until(lambda: rows_at_least(settings, "effects", 200), timeout=60)
        follow_ups = await collect(settings, settings.topic(PortAlertRaised.event_type), expect=200, settle=2.0)

    assert await fetchval(settings.database_url, "SELECT count(*) FROM effects") == 200
    assert len({dict(r.headers)["ce_id"] for r in follow_ups}) == 200
