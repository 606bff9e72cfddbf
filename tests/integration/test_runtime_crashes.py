"""A process killed at the worst moment loses nothing and duplicates nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from schemas import PortAlertRaised

from ..factories import port_requested
from .ledger import collect, committed_offsets, fetchval, port_requested_record, publish, running, wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[2]


async def test_a_process_killed_after_its_database_commit_and_before_its_offset_commit_redelivers_without_a_second_effect(settings):
    record = port_requested_record(settings, port_requested())
    await publish(settings, [record])
    environment = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
                   "DATABASE_URL": settings.database_url, "TOPIC_PREFIX": settings.topic_prefix}
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.crashing_ledger", cwd=PROJECT_ROOT, env=environment,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
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
