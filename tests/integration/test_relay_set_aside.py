"""A row the broker can never accept is set aside with its reason; the relay goes on; health says so."""

from __future__ import annotations

import asyncio

import httpx
from typer.testing import CliRunner

from porting_cli.main import app
from porting_runtime.outbox import write_outbox
from schemas import KafkaRecord, PortAlertRaised

from ..factories import port_requested
from .ledger import LEDGER, collect, fetchval, port_requested_record, publish, rows_are, running, wait_until


async def _health(service) -> httpx.Response:
    port = service.server.servers[0].sockets[0].getsockname()[1]
    async with httpx.AsyncClient() as client:
        return await client.get(f"http://127.0.0.1:{port}/health")


async def test_an_outbox_row_too_large_for_the_broker_is_set_aside_and_later_follow_ups_still_go_out(settings):
    topic = settings.topic(PortAlertRaised.event_type)
    async with running(settings, LEDGER, serve_http=True) as service:
        assert await wait_until(lambda: _serving(service), timeout=30)
        async with service.pool.acquire() as connection, connection.transaction():
            await write_outbox(connection, [KafkaRecord(topic, b"k", b"x" * 2_000_000, [])])
        await publish(settings, [port_requested_record(settings, port_requested()) for _ in range(3)])
        assert await wait_until(lambda: rows_are(settings, "effects", 3), timeout=60)
        published = await collect(settings, topic, expect=3, settle=0.5)
        assert len(published) == 3, "the follow-ups behind the refused row were published"
        assert await fetchval(settings.database_url,
                              "SELECT count(*) FROM outbox WHERE set_aside_at IS NOT NULL AND error LIKE '%at most%'") == 1
        health = await _health(service)
        assert health.status_code == 503 and health.json()["status"] == "degraded"
        assert "outbox set aside" in health.json()["problems"]

        listed = await _porting("outbox", "list", "ledger", "--database-url", settings.database_url)
        assert listed.exit_code == 0 and "2000000" in listed.output
        row_id = await fetchval(settings.database_url, "SELECT id FROM outbox WHERE set_aside_at IS NOT NULL")
        discarded = await _porting("outbox", "discard", "ledger", str(row_id), "--database-url", settings.database_url)
        assert discarded.exit_code == 0 and str(row_id) in discarded.output
        assert (await _health(service)).status_code == 200


async def _porting(*arguments: str):
    # The command runs its own event loop, as from a shell: off this test's loop.
    return await asyncio.to_thread(CliRunner().invoke, app, list(arguments))


async def _serving(service) -> bool:
    server = getattr(service, "server", None)
    return bool(server and server.started)
